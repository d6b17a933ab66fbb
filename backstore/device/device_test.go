package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// fileSource serves an image file. It counts reads and the most it saw at
// once; reads touching the bad range fail, standing in for a backstore that
// cannot get its bytes; delay slows every read down.
type fileSource struct {
	f     *os.File
	size  int64
	delay time.Duration
	bad   atomic.Pointer[[2]int64] // [lo, hi), changed while mounted

	reads, inFlight, maxInFlight, maxLen atomic.Int64
}

func (s *fileSource) Size() int64 { return s.size }

func (s *fileSource) ReadAt(p []byte, off int64) (int, error) {
	s.reads.Add(1)
	now := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	raise(&s.maxInFlight, now)
	raise(&s.maxLen, int64(len(p)))
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if bad := s.bad.Load(); bad != nil && off < bad[1] && off+int64(len(p)) > bad[0] {
		return 0, errors.New("injected read failure")
	}
	return s.f.ReadAt(p, off)
}

func raise(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

func requireDevice(t testing.TB) {
	t.Helper()
	testenv.RequireLoop(t)
	testenv.RequireCommands(t, "mke2fs", "debugfs")
	testenv.RequireFUSE(t)
}

// makeImage builds an ext4 image of a generated tree.
func makeImage(t testing.TB, spec treetest.Spec, size string) (tree, image string) {
	t.Helper()
	tree = t.TempDir()
	treetest.Generate(t, tree, spec)
	image = filepath.Join(t.TempDir(), "fs.ext4")
	out, err := exec.Command(testenv.LookPath("mke2fs"), "-q", "-t", "ext4", "-b", "4096", "-O", "^has_journal", "-d", tree, image, size).CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	return tree, image
}

func smallImage(t testing.TB) (tree, image string) {
	return makeImage(t, treetest.Spec{Files: 300, MaxSmall: 32 << 10, Seed: 3}, "64M")
}

func openSource(t testing.TB, image string) *fileSource {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return &fileSource{f: f, size: fi.Size()}
}

// mount mounts src and makes sure the test leaves nothing mounted.
func mount(t testing.TB, src Source, stateDir string, opts ...Option) *Device {
	t.Helper()
	target := filepath.Join(t.TempDir(), "mnt")
	d, err := Mount(context.Background(), src, target, append([]Option{WithStateDir(stateDir)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// regularFiles lists the non-empty regular files of tree, relative to it.
func regularFiles(t testing.TB, tree string) []string {
	var out []string
	filepath.WalkDir(tree, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil && fi.Size() > 0 {
				rel, _ := filepath.Rel(tree, p)
				out = append(out, rel)
			}
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatal("no files in the tree")
	}
	return out
}

func TestMountServesTree(t *testing.T) {
	requireDevice(t)
	tree, image := smallImage(t)
	src := openSource(t, image)
	stateDir := t.TempDir()
	d := mount(t, src, stateDir)
	treetest.Compare(t, tree, d.Target())
	if src.reads.Load() == 0 {
		t.Fatal("the source saw no reads")
	}
	if got := src.maxLen.Load(); got > DefaultMaxRead {
		t.Errorf("a read of %d bytes reached the source, more than the %d allowed", got, DefaultMaxRead)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(d.LoopDevice(), &st); err != nil {
		t.Fatal(err)
	}
	if d.Rdev() != st.Rdev || d.DevT() != d.Major()<<20|d.Minor() || d.Major() == 0 {
		t.Errorf("device numbers: rdev %#x (stat %#x), %d:%d, devt %#x", d.Rdev(), st.Rdev, d.Major(), d.Minor(), d.DevT())
	}
	if got := loopBacking(d.LoopDevice()); got != filepath.Join(d.st.FUSEDir, diskName) {
		t.Errorf("%s is backed by %q", d.LoopDevice(), got)
	}
	if ro, _ := os.ReadFile("/sys/block/" + filepath.Base(d.LoopDevice()) + "/ro"); strings.TrimSpace(string(ro)) != "1" {
		t.Errorf("%s is not read-only", d.LoopDevice())
	}
	// Not the megabytes the kernel gives a loop device over FUSE.
	if ra, _ := os.ReadFile("/sys/block/" + filepath.Base(d.LoopDevice()) + "/queue/read_ahead_kb"); strings.TrimSpace(string(ra)) != strconv.Itoa(DefaultReadAhead) {
		t.Errorf("%s has readahead %q KiB, want %d", d.LoopDevice(), strings.TrimSpace(string(ra)), DefaultReadAhead)
	}
	if err := os.WriteFile(filepath.Join(d.Target(), "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("creating a file: %v, want EROFS", err)
	}
	if _, err := os.OpenFile(filepath.Join(d.st.FUSEDir, diskName), os.O_RDWR, 0); err == nil {
		t.Error("the disk opened for writing")
	}

	target := d.Target()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertGone(t, target, stateDir)
}

// TestConcurrentReads reads every file from many goroutines at once through
// a slow source: the bytes must be right and the source must be asked
// concurrently.
func TestConcurrentReads(t *testing.T) {
	requireDevice(t)
	tree, image := smallImage(t)
	src := openSource(t, image)
	src.delay = 2 * time.Millisecond
	d := mount(t, src, t.TempDir())
	files := regularFiles(t, tree)
	var wg sync.WaitGroup
	var read atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range files {
				rel := files[(i*7+g*31)%len(files)] // each goroutine its own order
				got, err := os.ReadFile(filepath.Join(d.Target(), rel))
				if err != nil {
					t.Errorf("%s: %v", rel, err)
					return
				}
				want, _ := os.ReadFile(filepath.Join(tree, rel))
				if !bytes.Equal(got, want) {
					t.Errorf("%s: wrong bytes", rel)
					return
				}
				read.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d file reads, %d source reads, at most %d at once", read.Load(), src.reads.Load(), src.maxInFlight.Load())
	if src.maxInFlight.Load() < 2 {
		t.Errorf("the source was never read concurrently")
	}
}

// TestReadErrorIsEIO: a source that fails gives the reader EIO, never
// bytes, and the other files stay readable.
func TestReadErrorIsEIO(t *testing.T) {
	requireDevice(t)
	tree, image := smallImage(t)
	src := openSource(t, image)
	// Fail the disk block that holds the first block of one file.
	victim := filepath.Join("names", "spaces and ünïcode ✓")
	out, err := exec.Command(testenv.LookPath("debugfs"), "-R", fmt.Sprintf("bmap %q 0", "/"+victim), image).Output()
	if err != nil {
		t.Fatal(err)
	}
	var blk int64
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &blk); err != nil || blk == 0 {
		t.Fatalf("debugfs bmap: %q", out)
	}
	src.bad.Store(&[2]int64{blk * 4096, blk*4096 + 4096})
	d := mount(t, src, t.TempDir())
	if _, err := os.ReadFile(filepath.Join(d.Target(), victim)); !errors.Is(err, syscall.EIO) {
		t.Errorf("%s: %v, want EIO", victim, err)
	}
	good := 0
	for _, rel := range regularFiles(t, tree) {
		if rel == victim {
			continue
		}
		got, err := os.ReadFile(filepath.Join(d.Target(), rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if want, _ := os.ReadFile(filepath.Join(tree, rel)); !bytes.Equal(got, want) {
			t.Errorf("%s: wrong bytes served", rel)
			continue
		}
		good++
	}
	t.Logf("%d other files read", good)
	// A failure is not remembered as data: once the source recovers, so
	// does the file.
	src.bad.Store(nil)
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(d.Target(), victim))
	if want, _ := os.ReadFile(filepath.Join(tree, victim)); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s after the source recovered: %v", victim, err)
	}
}

// TestCloseDuringReads closes from two goroutines while readers are busy:
// both calls succeed once the readers let go, and readers never see wrong
// bytes.
func TestCloseDuringReads(t *testing.T) {
	requireDevice(t)
	tree, image := smallImage(t)
	src := openSource(t, image)
	src.delay = time.Millisecond
	stateDir := t.TempDir()
	d := mount(t, src, stateDir)
	files := regularFiles(t, tree)
	var closing atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range files {
				rel := files[(i+g*37)%len(files)]
				got, err := os.ReadFile(filepath.Join(d.Target(), rel))
				if err != nil {
					if !closing.Load() {
						t.Errorf("%s before Close: %v", rel, err)
					}
					return
				}
				if want, _ := os.ReadFile(filepath.Join(tree, rel)); !bytes.Equal(got, want) {
					t.Errorf("%s: wrong bytes", rel)
					return
				}
			}
		}()
	}
	for src.reads.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	closing.Store(true)
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- d.Close() }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	wg.Wait()
	assertGone(t, d.Target(), stateDir)
}

func TestMountRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	src := &fileSource{size: 1 << 20}
	for _, tc := range []struct {
		name string
		src  Source
		opts []Option
	}{
		{"small max read", src, []Option{WithMaxRead(100)}},
		{"huge max read", src, []Option{WithMaxRead(4 << 20)}},
		{"empty source", &fileSource{}, nil},
		{"nil source", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Mount(context.Background(), tc.src, filepath.Join(dir, "mnt"), append(tc.opts, WithStateDir(filepath.Join(dir, "state")))...)
			if err == nil {
				t.Fatal("Mount succeeded")
			}
		})
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "state")); len(entries) != 0 {
		t.Errorf("state left behind: %v", entries)
	}
}

// TestMountFailureLeavesNothing: when the file system cannot be mounted,
// the loop device and the FUSE mount made before are undone.
func TestMountFailureLeavesNothing(t *testing.T) {
	requireDevice(t)
	stateDir := t.TempDir()
	target := filepath.Join(t.TempDir(), "mnt")
	var attached uint32
	_, err := Mount(context.Background(), memSource{data: make([]byte, 8<<20)}, target,
		WithStateDir(stateDir), WithAttached(func(devt uint32) error { attached = devt; return nil }))
	if err == nil {
		t.Fatal("a disk of zeros mounted as ext4")
	}
	t.Log(err)
	if attached == 0 {
		t.Error("WithAttached was not called before the mount")
	}
	assertGone(t, target, stateDir)
}

// memSource is an in-memory disk whose ReadAt can misbehave.
type memSource struct {
	data  []byte
	short bool  // return fewer bytes than asked, without an error
	err   error // fail every read
}

func (m memSource) Size() int64 { return int64(len(m.data)) }
func (m memSource) ReadAt(p []byte, off int64) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	n := copy(p, m.data[off:])
	if m.short && n > 1 {
		n--
	}
	if n < len(p) && !m.short {
		return n, io.EOF
	}
	return n, nil
}

func TestReadDisk(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	log := testLogger(t)
	for _, tc := range []struct {
		name  string
		src   memSource
		off   int64
		len   int
		want  []byte
		errno syscall.Errno
	}{
		{"inside", memSource{data: data}, 10, 20, data[10:30], 0},
		{"across the end", memSource{data: data}, 990, 100, data[990:], 0},
		{"at the end", memSource{data: data}, 1000, 100, nil, 0},
		{"past the end", memSource{data: data}, 5000, 100, nil, 0},
		{"negative offset", memSource{data: data}, -1, 100, nil, syscall.EINVAL},
		{"failing source", memSource{data: data, err: errors.New("no route")}, 0, 100, nil, syscall.EIO},
		{"short read without error", memSource{data: data, short: true}, 0, 100, nil, syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, errno := readDisk(tc.src, log, make([]byte, tc.len), tc.off)
			if errno != tc.errno {
				t.Fatalf("errno %v, want %v", errno, tc.errno)
			}
			if errno != 0 {
				return
			}
			got, st := res.Bytes(make([]byte, tc.len))
			if st != 0 || !bytes.Equal(got, tc.want) {
				t.Errorf("got %q (%v), want %q", got, st, tc.want)
			}
		})
	}
}

// assertGone checks that a mount left nothing: no file system at target,
// no loop device on a file under the state directory, no FUSE mount there
// and no state.
func assertGone(t *testing.T, target, stateDir string) {
	t.Helper()
	if _, m := mountedDev(target); m {
		t.Errorf("%s is still mounted", target)
	}
	dirs, _ := filepath.Glob("/sys/block/loop*")
	for _, d := range dirs {
		if b := loopBacking(d); strings.HasPrefix(b, stateDir+"/") {
			t.Errorf("%s still attached to %s", filepath.Base(d), b)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), stateDir) {
		t.Errorf("a mount under the state directory is left:\n%s", mi)
	}
	if entries, _ := os.ReadDir(stateDir); len(entries) != 0 {
		t.Errorf("state left: %v", entries)
	}
}
