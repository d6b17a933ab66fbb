package device

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// BenchmarkSequentialRead reads a 256 MiB file of random data from a cold
// page cache, through Mount and through a plain read-only loop device over
// the same image, alternating, and reports both throughputs and their
// ratio (fuse/loop: 1 means the FUSE path costs nothing). A loop device
// with direct I/O over the image ("loop-dio") is measured too: it is the
// plain device configured like the one Mount makes.
func BenchmarkSequentialRead(b *testing.B) {
	requireDevice(b)
	const size = 256 << 20
	tree := b.TempDir()
	writeRandom(b, filepath.Join(tree, "big.bin"), size)
	image := filepath.Join(b.TempDir(), "fs.ext4")
	if out, err := exec.Command(testenv.LookPath("mke2fs"), "-q", "-t", "ext4", "-b", "4096", "-O", "^has_journal", "-d", tree, image, "300M").CombinedOutput(); err != nil {
		b.Fatalf("mke2fs: %v\n%s", err, out)
	}
	os.RemoveAll(tree)

	plain, dio := filepath.Join(b.TempDir(), "plain"), filepath.Join(b.TempDir(), "dio")
	mountPlainLoop(b, image, plain)
	mountPlainLoop(b, image, dio, "--direct-io=on")
	d := mount(b, openSource(b, image), b.TempDir())

	paths := map[string]string{
		"loop":     filepath.Join(plain, "big.bin"),
		"loop-dio": filepath.Join(dio, "big.bin"),
		"fuse":     filepath.Join(d.Target(), "big.bin"),
	}
	modes := []string{"loop", "loop-dio", "fuse"}
	took := map[string]time.Duration{}
	buf := make([]byte, 1<<20)
	passes := 0
	for b.Loop() {
		// Each pass starts with another mode, so none always goes first.
		for j := range modes {
			name := modes[(passes+j)%len(modes)]
			b.StopTimer()
			dropCaches(b)
			b.StartTimer()
			start := time.Now()
			n := readAll(b, paths[name], buf)
			took[name] += time.Since(start)
			if n != size {
				b.Fatalf("%s: read %d bytes, want %d", name, n, size)
			}
		}
		passes++
	}
	mbps := func(name string) float64 {
		return float64(size) * float64(passes) / took[name].Seconds() / 1e6
	}
	b.ReportMetric(mbps("loop"), "loop-MB/s")
	b.ReportMetric(mbps("loop-dio"), "loop-dio-MB/s")
	b.ReportMetric(mbps("fuse"), "fuse-MB/s")
	b.ReportMetric(mbps("fuse")/mbps("loop"), "fuse/loop")
	b.ReportMetric(mbps("fuse")/mbps("loop-dio"), "fuse/loop-dio")
}

func writeRandom(b *testing.B, path string, size int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{7})
	if _, err := io.CopyN(f, r, int64(size)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// mountPlainLoop mounts image read-only at dir on a loop device of its own,
// set up with the extra losetup flags.
func mountPlainLoop(b *testing.B, image, dir string, flags ...string) {
	args := append([]string{"--find", "--show", "--read-only"}, flags...)
	out, err := exec.Command(testenv.LookPath("losetup"), append(args, image)...).Output()
	if err != nil {
		b.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	b.Cleanup(func() { exec.Command(testenv.LookPath("losetup"), "-d", loop).Run() })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(testenv.LookPath("mount"), "-t", "ext4", "-o", "ro,noload", loop, dir).CombinedOutput(); err != nil {
		b.Fatalf("mount: %v\n%s", err, out)
	}
	b.Cleanup(func() { unmountBusy(context.Background(), dir) })
}

func dropCaches(b *testing.B) {
	exec.Command("sync").Run()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		b.Fatalf("drop caches: %v", err)
	}
}

func readAll(b *testing.B, path string, buf []byte) int64 {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatalf("read %s: %v", path, err)
		}
	}
}
