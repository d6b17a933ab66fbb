package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// command starts the test binary as the dejavu command.
func command(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return commandAs(t, "1", args...)
}

// commandAs starts the test binary as the dejavu command, or with main
// "blocked" as the command with test-blocked (blockedRootCmd).
func commandAs(t *testing.T, main string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DEJAVU_TEST_MAIN="+main)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, &stderr
}

// exitWithin waits for cmd to end, failing the test after d.
func exitWithin(t *testing.T, cmd *exec.Cmd, d time.Duration) *os.ProcessState {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState
	case <-time.After(d):
		t.Fatalf("dejavu %s still running %s after the signal", strings.Join(cmd.Args[1:], " "), d)
		return nil
	}
}

// TestInterruptCancelsRegistryRequests: the first SIGINT ends a command
// waiting on a registry that never answers, with an error, long before
// the request timeout.
func TestInterruptCancelsRegistryRequests(t *testing.T) {
	cmd, stderr := command(t, "image", "inspect", testreg.Silent(t)+"/app:v1")
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	st := exitWithin(t, cmd, 5*time.Second)
	if st.ExitCode() != 1 || !strings.HasPrefix(stderr.String(), "dejavu: ") {
		t.Errorf("exit code %d, stderr %q; want 1 and an error", st.ExitCode(), stderr.String())
	}
}

// TestSecondSignalEndsTheProcess: a command blocked where no context
// reaches (opening a FIFO nobody writes, which dejavu's own commands no
// longer do: test-blocked does) ends at the second SIGTERM.
func TestSecondSignalEndsTheProcess(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "trace.djv")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, _ := commandAs(t, "blocked", "test-blocked", fifo)
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	st := exitWithin(t, cmd, 5*time.Second)
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("ended with %s; want killed by the second SIGTERM", st)
	}
}
