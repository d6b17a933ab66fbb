package snapshotter_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/metrics"
	"github.com/dejavu-project/dejavu/internal/testutil/busybox"
	"github.com/dejavu-project/dejavu/internal/testutil/ctdtest"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/record"
	"github.com/dejavu-project/dejavu/snapshotter"
	"github.com/dejavu-project/dejavu/trace"
)

// env is a containerd with the dejavu snapshotter, which the test starts
// in this process (with metrics) or as a process of its own.
type env struct {
	*ctdtest.Env
	metrics string // host:port of the in-process snapshotter's metrics
	met     *lazymount.Metrics
}

func newEnv(t *testing.T, namespace string) *env {
	t.Helper()
	ctdtest.Require(t)
	reg := metrics.NewRegistry()
	addr, err := metrics.Serve(t.Context(), "127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	met, err := lazymount.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{Env: ctdtest.New(t, namespace), metrics: addr, met: met}
}

// startInProcess serves the snapshotter, with opts, from this process
// until StopSnapshotter (or the teardown) stops it.
func (e *env) startInProcess(t *testing.T, opts ...snapshotter.Option) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, e.Sock, e.Root, opts, lazymount.WithMetrics(e.met)) }()
	e.StopSnapshotter = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("snapshotter: %v", err)
		}
		e.StopSnapshotter = nil
	}
	ctdtest.WaitForSocket(t, e.Sock, done)
}

// startProcess serves the snapshotter from a new process, this test binary
// again (see TestMain), for the test to kill.
func (e *env) startProcess(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveSockEnv+"="+e.Sock, serveRootEnv+"="+e.Root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ctdtest.WaitForSocket(t, e.Sock, nil)
	return cmd
}

// pull pulls ref into containerd for the snapshotter, as `dejavu image
// pull` does.
func (e *env) pull(t *testing.T, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if _, err := snapshotter.Pull(ctx, e.Ctd.Address, ref, snapshotter.WithNamespace(e.Namespace)); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

// tracedImage builds the busybox image into a fresh registry and records
// a trace of its start; it returns the registry's address, the image's
// tree, its reference and the trace file.
func tracedImage(t *testing.T) (addr, tree, ref, file string) {
	t.Helper()
	addr, tree, ref = busybox.Image(t)
	return addr, tree, ref, recordTrace(t, ref)
}

// recordTrace mounts ref with the backstore recorder on, reads what the image's
// command reads (busybox, every data file), and writes the trace to a file.
func recordTrace(t *testing.T, ref string) string {
	t.Helper()
	rec := record.NewCapture(time.Now())
	dir := t.TempDir()
	opts := append(rec.MountOptions(), lazymount.WithStateDir(t.TempDir()), lazymount.WithTrace(trace.SourceSpec{Kind: trace.SourceNone}),
		lazymount.WithBackstoreOptions(backstore.WithCacheDir(t.TempDir())))
	m, err := lazymount.Start(t.Context(), ref, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "data", "*", "*"))
	for _, f := range append([]string{filepath.Join(dir, "bin", "busybox")}, files...) {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	tr := rec.Trace("default", busybox.ReadData, "test")
	tr.Recorder = trace.RecorderBackstore
	if len(tr.Records) == 0 {
		t.Fatal("nothing recorded")
	}
	file := filepath.Join(t.TempDir(), "bb.djv")
	if err := trace.WriteFile(file, tr); err != nil {
		t.Fatal(err)
	}
	return file
}

// attach attaches the trace file to the image at ref, as `dejavu trace
// attach` does, and returns the artifact's digest.
func attach(t *testing.T, ref, file string) string {
	t.Helper()
	r, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trace.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := trace.Attach(t.Context(), r, tr)
	if err != nil {
		t.Fatalf("attach %s to %s: %v", file, ref, err)
	}
	return d.String()
}
