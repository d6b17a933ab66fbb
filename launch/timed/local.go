package timed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// StartLocal times a start of the same program from a local file holding
// the image's ext4 file system (`dejavu image raw`), mounted read-only
// through a loop device: the start an ordinary pull would give once the
// layers are unpacked, with no FUSE, lazy backstore or decompression in
// the way. cfg is the image's config. Needs root.
func StartLocal(ctx context.Context, ext4 string, cfg v1.Config, p Program) (t Timing, err error) {
	mnt, err := os.MkdirTemp("", "dejavu-local-")
	if err != nil {
		return Timing{}, err
	}
	defer os.Remove(mnt)
	start := time.Now()
	// mount(8)'s loop option sets the loop device to detach itself at the
	// unmount; noload: a read-only mount must not replay a journal.
	if err := command(ctx, "mount", "-t", "ext4", "-o", "ro,noload,loop", ext4, mnt); err != nil {
		return Timing{}, err
	}
	defer func() {
		if uerr := command(context.WithoutCancel(ctx), "umount", mnt); err == nil {
			err = uerr
		}
	}()
	t.Mounted = time.Since(start)
	if err := run(ctx, mnt, cfg, p); err != nil {
		return Timing{}, err
	}
	t.Total = time.Since(start)
	return t, nil
}

func command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("timed: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
