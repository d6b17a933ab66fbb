package timed

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/prefetch"
)

// Program is what a start runs and when it counts as ready.
type Program struct {
	Args           []string // the command; empty: the image's own
	Ready          launch.Probe
	Timeout        time.Duration
	Stdout, Stderr io.Writer // nil: discarded
}

// Timing is how long a start took: to ready, and of that, to mounted.
type Timing struct {
	Total, Mounted time.Duration
	// Prefetch is the prefetch's outcome (zero without one).
	Prefetch prefetch.Report
}

// Start mounts ref lazily (lazymount, with opts), starts its program in
// namespaces as a container runtime would (launch), waits until it is
// ready, then stops it and unmounts. Needs root.
func Start(ctx context.Context, ref string, p Program, opts ...lazymount.Option) (t Timing, err error) {
	mnt, err := os.MkdirTemp("", "dejavu-run-")
	if err != nil {
		return Timing{}, err
	}
	defer os.Remove(mnt)
	start := time.Now()
	m, err := lazymount.Start(ctx, ref, mnt, opts...)
	if err != nil {
		return Timing{}, err
	}
	defer func() {
		cerr := m.Close()
		t.Prefetch = m.Report()
		if err == nil && cerr != nil {
			err = cerr
		}
	}()
	t.Mounted = time.Since(start)
	if err := run(ctx, mnt, m.Backstore().Config().Config, p); err != nil {
		return Timing{}, err
	}
	t.Total = time.Since(start)
	return t, nil
}

// run starts the program of an image whose root file system is mounted at
// rootfs and waits until it is ready, then stops it.
func run(ctx context.Context, rootfs string, cfg v1.Config, p Program) error {
	stdout, stderr := p.Stdout, p.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	proc, err := launch.Start(ctx, launch.Spec{
		RootFS:  rootfs,
		Config:  cfg,
		Args:    p.Args,
		Ready:   p.Ready,
		Timeout: p.Timeout,
		Stdout:  stdout,
		Stderr:  stderr,
	})
	if err != nil {
		return err
	}
	defer proc.Stop(5 * time.Second)
	_, err = proc.WaitReady(ctx)
	return err
}

// DropPageCache makes the next start cold as far as the kernel goes. A
// failure is the caller's to report: a start that is not cold is still a
// start.
func DropPageCache() error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		return fmt.Errorf("timed: cannot drop the page cache; this start may not be cold: %w", err)
	}
	return nil
}
