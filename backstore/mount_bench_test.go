package backstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

func requireMounts(b *testing.B) {
	testenv.RequireLoop(b)
	testenv.RequireCommands(b, "mke2fs")
	testenv.RequireFUSE(b)
}

func dropCaches(b *testing.B) {
	exec.Command("sync").Run()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		b.Fatalf("drop caches: %v", err)
	}
}

// pushBuilt builds dir into an image in a fresh embedded registry.
func pushBuilt(b *testing.B, dir string) (ref string, built *overlaybd.Built, reg *testreg.Registry) {
	built, err := overlaybd.Build(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { built.Close() })
	reg = testreg.Start(b)
	ref = reg.Ref("bench:v1")
	r, _ := imageref.Parse(ref)
	if err := imageref.WriteImage(context.Background(), r, built.Image); err != nil {
		b.Fatal(err)
	}
	return ref, built, reg
}

func timeCmd(b *testing.B, script string) time.Duration {
	start := time.Now()
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", script, err, out)
	}
	return time.Since(start)
}

// BenchmarkCachedSequentialRead reads a 256 MiB file through a dejavu mount
// whose cache holds every byte, and through the same ext4 image on a plain
// loop device over a local file, page cache dropped before each pass. The
// ratio (dejavu/plain throughput) is the figure of merit.
func BenchmarkCachedSequentialRead(b *testing.B) {
	requireMounts(b)
	src := b.TempDir()
	const size = 256 << 20
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(src, "big.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	ref, built, _ := pushBuilt(b, src)

	// The plain baseline: the same device as a raw file, loop-mounted.
	f, _ := os.Open(built.LayerPath)
	fi, _ := f.Stat()
	blob, err := overlaybd.OpenBlob(f, fi.Size())
	if err != nil {
		b.Fatal(err)
	}
	dev, _ := overlaybd.OpenDevice(blob)
	raw := filepath.Join(b.TempDir(), "plain.ext4")
	rf, _ := os.Create(raw)
	if err := overlaybd.WriteRaw(context.Background(), dev, rf); err != nil {
		b.Fatal(err)
	}
	rf.Close()
	f.Close()
	plain := testenv.MountExt4(b, raw)

	cache := b.TempDir()
	bs, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(cache))
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	warm := make([]byte, 1<<20)
	for off := int64(0); off < bs.Size(); off += int64(len(warm)) {
		bs.ReadAt(warm[:min(int64(len(warm)), bs.Size()-off)], off)
	}
	target := filepath.Join(b.TempDir(), "mnt")
	d, err := device.Mount(context.Background(), bs, target, device.WithStateDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()

	var tPlain, tDejavu time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dropCaches(b)
		tPlain += timeCmd(b, "cat "+filepath.Join(plain, "big.bin")+" > /dev/null")
		dropCaches(b)
		tDejavu += timeCmd(b, "cat "+filepath.Join(target, "big.bin")+" > /dev/null")
	}
	mbps := func(t time.Duration) float64 { return float64(size) * float64(b.N) / t.Seconds() / 1e6 }
	b.ReportMetric(mbps(tPlain), "plain-MB/s")
	b.ReportMetric(mbps(tDejavu), "dejavu-MB/s")
	b.ReportMetric(mbps(tDejavu)/mbps(tPlain), "ratio")
}

// BenchmarkColdFindCat times a cold `find / -type f | xargs cat` of a tree
// of a few thousand files through a dejavu mount, at 20 ms round trip to
// the registry, counting the registry requests it takes.
func BenchmarkColdFindCat(b *testing.B) {
	requireMounts(b)
	src := b.TempDir()
	treetest.Generate(b, src, treetest.Spec{Files: 3000, MaxSmall: 48 << 10, Big: 16 << 20, Seed: 2})
	ref, _, reg := pushBuilt(b, src)
	p, err := netshape.Start("http://"+reg.Addr, netshape.WithRTT(20*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	sref := strings.Replace(ref, reg.Addr, p.Addr(), 1)
	var requests, bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cache := b.TempDir()
		dropCaches(b)
		p.Reset()
		b.StartTimer()
		bs, err := backstore.Open(context.Background(), sref, backstore.WithCacheDir(cache))
		if err != nil {
			b.Fatal(err)
		}
		target := filepath.Join(b.TempDir(), "mnt")
		d, err := device.Mount(context.Background(), bs, target, device.WithStateDir(b.TempDir()))
		if err != nil {
			b.Fatal(err)
		}
		timeCmd(b, fmt.Sprintf("find %s -type f -print0 | xargs -0 cat > /dev/null", target))
		b.StopTimer()
		d.Close()
		bs.Close()
		s := p.Stats()
		requests += s.Requests
		bytes += s.Bytes
		b.StartTimer()
	}
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(bytes)/float64(b.N)/1e6, "MB-fetched/op")
}
