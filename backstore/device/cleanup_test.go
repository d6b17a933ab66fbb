package device

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// childEnv makes the test binary a process that mounts an image, says
// "mounted", and closes the mount on SIGTERM; its value is
// image|target|stateDir.
const childEnv = "DEJAVU_DEVICE_TEST_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(child(v))
	}
	os.Exit(m.Run())
}

func child(arg string) int {
	parts := strings.SplitN(arg, "|", 3)
	if len(parts) != 3 {
		fmt.Println("error: bad argument", arg)
		return 2
	}
	f, err := os.Open(parts[0])
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fi, err := f.Stat()
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	d, err := Mount(context.Background(), &fileSource{f: f, size: fi.Size()}, parts[1], WithStateDir(parts[2]))
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("mounted")
	<-term
	if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	return 0
}

// startChild mounts image at target in another process and returns once
// it is mounted.
func startChild(t *testing.T, image, target, stateDir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+image+"|"+target+"|"+stateDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "mounted" {
		t.Fatalf("child: %q", line)
	}
	return cmd
}

// childState returns the state the child recorded for target.
func childState(t *testing.T, stateDir, target string) (string, state) {
	t.Helper()
	all, err := states(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for dir, st := range all {
		if st.Target == target {
			return dir, st
		}
	}
	t.Fatalf("no state for %s in %v", target, all)
	return "", state{}
}

// TestCleanupAfterCrash kills mounting processes and expects Cleanup (or
// Unmount) to tear down their mounts, loop devices and FUSE mounts, and to
// leave a live process's mount alone.
func TestCleanupAfterCrash(t *testing.T) {
	requireDevice(t)
	tree, image := smallImage(t)
	stateDir := t.TempDir()
	live := mount(t, openSource(t, image), stateDir, WithLogger(testLogger(t)))
	for _, how := range []string{"cleanup", "cleanup, loop not recorded", "unmount"} {
		t.Run(how, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "mnt")
			cmd := startChild(t, image, target, stateDir)
			dir, st := childState(t, stateDir, target)
			if st.Loop == "" || loopBacking(st.Loop) != st.disk() {
				t.Fatalf("state %+v: loop not attached to the disk", st)
			}
			cmd.Process.Kill()
			cmd.Wait()
			if _, m := mountedDev(target); !m {
				t.Fatal("the mount vanished with its process; nothing to clean up")
			}
			if f, err := os.Open(filepath.Join(st.FUSEDir, diskName)); err == nil {
				f.Close()
				t.Fatal("the dead process's FUSE file still opens")
			}
			switch how {
			case "cleanup, loop not recorded":
				// As if the process died between attaching and saving.
				st2 := st
				st2.Loop = ""
				b, _ := json.Marshal(st2)
				if err := os.WriteFile(filepath.Join(dir, stateFile), b, 0o600); err != nil {
					t.Fatal(err)
				}
				fallthrough
			case "cleanup":
				n, err := Cleanup(context.Background(), WithStateDir(stateDir), WithLogger(testLogger(t)))
				if err != nil || n != 1 {
					t.Fatalf("Cleanup = %d, %v; want 1", n, err)
				}
			case "unmount":
				if err := Unmount(context.Background(), target, WithStateDir(stateDir)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("state directory %s left: %v", dir, err)
			}
			assertGone(t, target, dir)
		})
	}
	// The live mount was not touched.
	treetest.Compare(t, tree, live.Target())
	if n, err := Cleanup(context.Background(), WithStateDir(stateDir)); n != 0 || err != nil {
		t.Errorf("Cleanup with only a live mount = %d, %v", n, err)
	}
	if err := Unmount(context.Background(), filepath.Join(t.TempDir(), "nothing"), WithStateDir(stateDir)); err == nil {
		t.Error("Unmount of nothing succeeded")
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, live.Target(), stateDir)
}

// TestUnmountLiveOwner: Unmount asks the running owner to stop, which
// tears its own mount down.
func TestUnmountLiveOwner(t *testing.T) {
	requireDevice(t)
	_, image := smallImage(t)
	stateDir := t.TempDir()
	target := filepath.Join(t.TempDir(), "mnt")
	cmd := startChild(t, image, target, stateDir)
	if _, st := childState(t, stateDir, target); loopBacking(st.Loop) != st.disk() {
		t.Fatalf("state %+v: loop not attached to the disk", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := Unmount(ctx, target, WithStateDir(stateDir)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the owner did not close cleanly: %v", err)
	}
	assertGone(t, target, stateDir)
}

func TestProcessAlive(t *testing.T) {
	start, zombie, err := procStat(os.Getpid())
	if err != nil || zombie || start == 0 {
		t.Fatalf("procStat(self) = %d, %v, %v", start, zombie, err)
	}
	if !processAlive(state{PID: os.Getpid(), Start: start}) {
		t.Error("this process is not alive")
	}
	if processAlive(state{PID: os.Getpid(), Start: start + 1}) {
		t.Error("a process with this pid but another start time counts as the owner")
	}
	if processAlive(state{PID: 0}) || processAlive(state{PID: -1}) {
		t.Error("pid <= 0 is alive")
	}
	// An exited child that nobody waited for yet is a zombie: dead.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	st := state{PID: cmd.Process.Pid}
	for i := 0; processAlive(st); i++ {
		if i == 500 {
			t.Fatal("an exited child still counts as alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
