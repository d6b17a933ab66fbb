package device

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/dejavu-project/dejavu/internal/testenv"
	"github.com/dejavu-project/dejavu/internal/treetest"
)

// fileSource serves an image file, counting reads; reads in [badLo, badHi)
// fail, to stand in for a backstore that cannot get its bytes.
type fileSource struct {
	f            *os.File
	size         int64
	reads        atomic.Int64
	badLo, badHi int64
}

func (s *fileSource) Size() int64 { return s.size }
func (s *fileSource) ReadAt(p []byte, off int64) (int, error) {
	s.reads.Add(1)
	if off < s.badHi && off+int64(len(p)) > s.badLo {
		return 0, errors.New("injected read failure")
	}
	return s.f.ReadAt(p, off)
}

func requireDevice(t *testing.T) {
	t.Helper()
	testenv.RequireLoop(t)
	testenv.RequireCommands(t, "mke2fs", "debugfs")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Skip(t, "test needs /dev/fuse")
	}
}

// makeImage builds an ext4 image of a generated tree.
func makeImage(t *testing.T) (tree, image string) {
	t.Helper()
	tree = t.TempDir()
	treetest.Generate(t, tree, treetest.Spec{Files: 300, MaxSmall: 32 << 10, Seed: 3})
	image = filepath.Join(t.TempDir(), "fs.ext4")
	out, err := exec.Command(testenv.LookPath("mke2fs"), "-q", "-t", "ext4", "-b", "4096", "-O", "^has_journal", "-d", tree, image, "96M").CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	return tree, image
}

func openSource(t *testing.T, image string) *fileSource {
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	return &fileSource{f: f, size: fi.Size(), badLo: -1, badHi: -1}
}

func TestMountServesTree(t *testing.T) {
	requireDevice(t)
	tree, image := makeImage(t)
	src := openSource(t, image)
	stateDir := t.TempDir()
	target := filepath.Join(t.TempDir(), "mnt")
	d, err := Mount(context.Background(), src, target, WithStateDir(stateDir))
	if err != nil {
		t.Fatal(err)
	}
	treetest.Compare(t, tree, target)
	if src.reads.Load() == 0 {
		t.Fatal("the source saw no reads")
	}
	// Many readers at once.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			filepath.Walk(target, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					os.ReadFile(p)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	loop := d.LoopDevice()
	if d.DevT() == 0 {
		t.Error("no dev_t")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, target, loop, stateDir)
}

func assertGone(t *testing.T, target, loop, stateDir string) {
	t.Helper()
	if m, _ := isMountPoint(target); m {
		t.Errorf("%s is still mounted", target)
	}
	if b := loopBacking(loop); strings.Contains(b, stateDir) {
		t.Errorf("%s still attached to %s", loop, b)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), stateDir) {
		t.Errorf("a mount under the state dir is left:\n%s", mi)
	}
	if entries, _ := os.ReadDir(stateDir); len(entries) != 0 {
		t.Errorf("state left: %v", entries)
	}
}

// TestReadErrorIsEIO: a source that fails gives the reader EIO, not bytes.
func TestReadErrorIsEIO(t *testing.T) {
	requireDevice(t)
	tree, image := makeImage(t)
	src := openSource(t, image)
	// Fail the disk block that holds the first block of the big file.
	victim := bigFile(t, tree)
	out, err := exec.Command(testenv.LookPath("debugfs"), "-R", "bmap /"+victim+" 0", image).Output()
	if err != nil {
		t.Fatal(err)
	}
	var blk int64
	fmt.Sscan(strings.TrimSpace(string(out)), &blk)
	if blk == 0 {
		t.Fatalf("debugfs bmap: %q", out)
	}
	src.badLo, src.badHi = blk*4096, blk*4096+4096
	target := filepath.Join(t.TempDir(), "mnt")
	d, err := Mount(context.Background(), src, target, WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var eio, good int
	filepath.Walk(tree, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
			return nil
		}
		rel, _ := filepath.Rel(tree, p)
		got, err := os.ReadFile(filepath.Join(target, rel))
		if err != nil {
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("%s: %v, want EIO", rel, err)
			}
			eio++
			return nil
		}
		want, _ := os.ReadFile(p)
		if string(got) != string(want) {
			t.Errorf("%s: wrong bytes served", rel)
		}
		good++
		return nil
	})
	t.Logf("%d files read, %d failed with EIO", good, eio)
	if good == 0 || eio == 0 {
		t.Errorf("%d files read, %d failed: want both", good, eio)
	}
	if _, err := os.ReadFile(filepath.Join(target, victim)); !errors.Is(err, syscall.EIO) {
		t.Errorf("%s: %v, want EIO", victim, err)
	}
}

const childEnv = "DEJAVU_DEVICE_TEST_CHILD"

// TestMain lets the test binary act as a mounting child that gets killed.
func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		parts := strings.SplitN(v, "|", 3)
		f, _ := os.Open(parts[0])
		fi, _ := f.Stat()
		if _, err := Mount(context.Background(), &fileSource{f: f, size: fi.Size(), badLo: -1, badHi: -1}, parts[1], WithStateDir(parts[2])); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("mounted")
		select {}
	}
	os.Exit(m.Run())
}

// TestCleanupAfterCrash kills a mounting process and expects Cleanup to
// tear down its mount, loop device and FUSE mount.
func TestCleanupAfterCrash(t *testing.T) {
	requireDevice(t)
	_, image := makeImage(t)
	stateDir := t.TempDir()
	target := filepath.Join(t.TempDir(), "mnt")
	for _, how := range []string{"cleanup", "unmount"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+image+"|"+target+"|"+stateDir)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "mounted" {
			cmd.Process.Kill()
			t.Fatalf("child: %q", line)
		}
		all, _ := states(stateDir)
		var loop string
		for _, st := range all {
			loop = st.Loop
		}
		cmd.Process.Kill()
		cmd.Wait()
		if m, _ := isMountPoint(target); !m {
			t.Fatal("the mount vanished with its process; nothing to clean up")
		}
		switch how {
		case "cleanup":
			n, err := Cleanup(context.Background(), WithStateDir(stateDir))
			if err != nil || n != 1 {
				t.Fatalf("Cleanup = %d, %v", n, err)
			}
		case "unmount":
			if err := Unmount(context.Background(), target, WithStateDir(stateDir)); err != nil {
				t.Fatal(err)
			}
		}
		assertGone(t, target, loop, stateDir)
	}
	if err := Unmount(context.Background(), target, WithStateDir(stateDir)); err == nil {
		t.Fatal("Unmount of nothing succeeded")
	}
}

// bigFile returns the largest regular file of tree, relative to it.
func bigFile(t *testing.T, tree string) string {
	var best string
	var size int64
	filepath.Walk(tree, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			best, size = p, fi.Size()
		}
		return nil
	})
	rel, _ := filepath.Rel(tree, best)
	return rel
}
