package ctdtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ctr runs ctr and fails the test when it fails; while containerd's
// connection to a restarted snapshotter is still backing off (a few seconds
// at most), it tries again.
func (e *Env) Ctr(t testing.TB, args ...string) string {
	t.Helper()
	for i := 0; ; i++ {
		out, err := e.Ctd.Ctr(t.Context(), args...)
		if err == nil {
			return out
		}
		if !strings.Contains(err.Error(), "Unavailable") && !strings.Contains(err.Error(), "unavailable") || i == 50 {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Run starts a container with `ctr run --rm` on the snapshotter, with
// snapshot labels (KEY=VALUE), and returns its output.
func (e *Env) Run(t testing.TB, ref, id string, labels []string, args ...string) string {
	t.Helper()
	a := append([]string{"run", "--rm", "--snapshotter", Snapshotter}, e.Ctd.RunFlags()...)
	for _, l := range labels {
		a = append(a, "--snapshotter-label", l)
	}
	return e.Ctr(t, append(append(a, ref, id), args...)...)
}

// RunDetached starts a container with `ctr run -d` and leaves it running.
func (e *Env) RunDetached(t testing.TB, ref, id string, labels []string, args ...string) {
	t.Helper()
	a := []string{"run", "-d", "--snapshotter", Snapshotter}
	for _, l := range labels {
		a = append(a, "--snapshotter-label", l)
	}
	e.Ctr(t, append(append(append(a, e.Ctd.RunFlags()...), ref, id), args...)...)
}

// StartTask starts a created container and waits for it (ctr deletes the
// task when it exits); it returns the output.
func (e *Env) StartTask(t testing.TB, id string) string {
	t.Helper()
	return e.Ctr(t, "task", "start", "--fifo-dir", filepath.Join(e.Ctd.Dir, "fifo"), id)
}

// WaitNoneRunning waits (up to five seconds) until no task runs.
func (e *Env) WaitNoneRunning(t testing.TB) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if out, _ := e.Ctd.Ctr(t.Context(), "task", "ls"); !strings.Contains(out, "RUNNING") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mountDir is where the snapshotter mounts images.
func (e *Env) mountDir() string { return filepath.Join(e.Root, "mnt") }

// ImageMounts counts the snapshotter's image mounts.
func (e *Env) ImageMounts() int {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Count(string(b), " "+e.mountDir()+"/")
}

// AnyImageMounted reports whether anything is mounted under the
// snapshotter's image mount directory.
func (e *Env) AnyImageMounted() bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(b), e.mountDir())
}

// WaitUnmounted waits until the snapshotter has no image mounted:
// containerd removes snapshots in its garbage collection, after `ctr run
// --rm` returns.
func (e *Env) WaitUnmounted(t testing.TB) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if !e.AnyImageMounted() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the image stayed mounted after its container was removed")
}

// LayerSnapshot is the committed snapshot of the image's one layer.
func (e *Env) LayerSnapshot(t testing.TB) string {
	t.Helper()
	snaps := e.Ctr(t, "snapshot", "--snapshotter", Snapshotter, "ls")
	for _, line := range strings.Split(snaps, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[0], "sha256:") && f[len(f)-1] == "Committed" {
			return f[0]
		}
	}
	t.Fatalf("no committed layer snapshot after the pull:\n%s", snaps)
	return ""
}
