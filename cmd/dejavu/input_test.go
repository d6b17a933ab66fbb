package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNonRegularInputRefused: a FIFO nobody writes, given where a command
// reads a trace or a results file, is refused at once with an error saying
// it is not a regular file; open(2) of it used to block the command until
// SIGKILL. The commands run as processes of their own, so that one that
// blocks fails the test instead of hanging it.
func TestNonRegularInputRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "trace.djv")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"trace", "inspect", fifo},
		{"trace", "merge", fifo, "--out", filepath.Join(dir, "merged.djv")},
		{"trace", "attach", "localhost:1/app:v1", fifo},
		{"trace", "export", fifo, "--out", filepath.Join(dir, "export"), "--image", "localhost:1/app:v1"},
		{"report", fifo},
	} {
		cmd, stderr := command(t, args...)
		st := exitWithin(t, cmd, 10*time.Second)
		if st.ExitCode() != 1 || !strings.Contains(stderr.String(), "is a FIFO: not a regular file") {
			t.Errorf("dejavu %s: exit code %d, stderr %q; want 1 and an error saying it is not a regular file", strings.Join(args, " "), st.ExitCode(), stderr.String())
		}
	}
	for _, out := range []string{"merged.djv", "export"} {
		if _, err := os.Lstat(filepath.Join(dir, out)); err == nil {
			t.Errorf("%s was written", out)
		}
	}
}
