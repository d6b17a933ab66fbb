package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// nobody is the unprivileged user the commands are run as.
const nobody = 65534

// TestNeedsRootSaidPlainly: run by an unprivileged user, the commands that
// mount say they need root, instead of failing on the first thing root
// alone may do (it used to be "mkdir /run/dejavu/...: permission
// denied"). The tests run as root, so the command runs as nobody: the test
// binary, copied where nobody may run it, as the dejavu command.
func TestNeedsRootSaidPlainly(t *testing.T) {
	testenv.RequireRoot(t) // only root can start a process as another user
	home := nobodyDir(t)
	bin := filepath.Join(home, "dejavu.test")
	copyExecutable(t, os.Args[0], bin)
	for _, args := range [][]string{
		{"mount", "localhost:1/app:v1", filepath.Join(home, "mnt")},
		{"run", "localhost:1/app:v1"},
		{"trace", "record", "localhost:1/app:v1", "--out", filepath.Join(home, "t.djv")},
		{"snapshotter", "--root", filepath.Join(home, "root"), "--address", filepath.Join(home, "s.sock")},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = home
		cmd.Env = []string{"DEJAVU_TEST_MAIN=1", "HOME=" + home, "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		st := exitWithin(t, cmd, 30*time.Second)
		msg := stderr.String()
		if st.ExitCode() != 1 || !strings.Contains(msg, "needs root") || strings.Contains(msg, "permission denied") {
			t.Errorf("dejavu %s as uid %d: exit code %d, stderr %q; want 1 and an error saying it needs root", strings.Join(args, " "), nobody, st.ExitCode(), msg)
		}
	}
}

// nobodyDir makes a directory that nobody owns and may enter: t.TempDir's
// directories are root's alone.
func nobodyDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dejavu-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
