package backstore_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// countingRegistry is an in-process registry that counts the requests it
// answers.
type countingRegistry struct {
	host     string
	requests atomic.Int64
	blobGets atomic.Int64
	watch    atomic.Pointer[string] // a blob digest
	whole    atomic.Int64           // GETs of the watched blob without a Range header
}

func startRegistry(t *testing.T) *countingRegistry {
	t.Helper()
	cr := &countingRegistry{}
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cr.requests.Add(1)
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			cr.blobGets.Add(1)
			if d := cr.watch.Load(); d != nil && strings.HasSuffix(r.URL.Path, "/blobs/"+*d) && r.Header.Get("Range") == "" {
				cr.whole.Add(1)
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cr.host = strings.TrimPrefix(srv.URL, "http://")
	return cr
}

// builtImage builds a small image from a generated tree, pushes it and
// returns its reference and the layer blob path.
func builtImage(t *testing.T, reg *countingRegistry, files int) (string, string, *overlaybd.Built) {
	t.Helper()
	testenv.RequireCommands(t, "mke2fs")
	src := t.TempDir()
	treetest.Generate(t, src, treetest.Spec{Files: files, MaxSmall: 48 << 10, Seed: 11})
	built, err := overlaybd.Build(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { built.Close() })
	ref := reg.host + "/app:v1"
	r, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := imageref.WriteImage(context.Background(), r, built.Image); err != nil {
		t.Fatal(err)
	}
	return ref, built.LayerPath, built
}

// localDevice opens the same layer from the local file, as the reference.
func localDevice(t *testing.T, layerPath string) *lsmt.Device {
	t.Helper()
	f, err := os.Open(layerPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	b, err := overlaybd.OpenBlob(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	d, err := overlaybd.OpenDevice(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readAll(t *testing.T, r interface {
	ReadAt([]byte, int64) (int, error)
}, size int64) []byte {
	t.Helper()
	out := make([]byte, size)
	for off := int64(0); off < size; off += 1 << 20 {
		n := min(1<<20, size-off)
		if _, err := r.ReadAt(out[off:off+n], off); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
	}
	return out
}

func TestLazyMatchesLocalAndWarmIsOffline(t *testing.T) {
	reg := startRegistry(t)
	ref, layer, _ := builtImage(t, reg, 400)
	want := readAll(t, localDevice(t, layer), localDevice(t, layer).Size())
	cache := t.TempDir()
	reg.requests.Store(0)
	bs, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	opened := reg.requests.Load()
	got := readAll(t, bs, bs.Size())
	if !bytes.Equal(got, want) {
		t.Fatal("lazy device differs from the local one")
	}
	cold := reg.requests.Load()
	t.Logf("cold: %d requests to open, %d in all, %d blob GETs", opened, cold, reg.blobGets.Load())
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	reg.requests.Store(0)
	bs, err = backstore.Open(context.Background(), ref, backstore.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if !bytes.Equal(readAll(t, bs, bs.Size()), want) {
		t.Fatal("warm device differs from the local one")
	}
	if n := reg.requests.Load(); n != 0 {
		t.Fatalf("warm open and full read made %d registry requests, want 0", n)
	}
}

func TestConcurrentOverlappingReads(t *testing.T) {
	reg := startRegistry(t)
	ref, layer, _ := builtImage(t, reg, 200)
	local := localDevice(t, layer)
	want := readAll(t, local, local.Size())
	bs, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(t.TempDir()), backstore.WithFetchUnit(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 300; i++ {
				// Overlapping ranges clustered in the first few MiB so that
				// readers race on the same units.
				off := r.Int64N(min(8<<20, bs.Size()-200000))
				n := r.Int64N(200000) + 1
				buf := make([]byte, n)
				if _, err := bs.ReadAt(buf, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, want[off:off+n]) {
					errs <- &mismatch{off, n}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

type mismatch struct{ off, n int64 }

func (m *mismatch) Error() string { return "bytes differ" }

func TestHelloWorldFromRegistry(t *testing.T) {
	reg := startRegistry(t)
	layout := testenv.OverlaybdTestdata(t) + "/hello-world-oci-layout"
	src, _ := imageref.Parse("oci:" + layout + ":amd64-converted")
	dst, _ := imageref.Parse(reg.host + "/hello:obd")
	if _, err := imageref.Copy(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	bs, err := backstore.Open(context.Background(), reg.host+"/hello:obd", backstore.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	local := localDevice(t, layout+"/blobs/sha256/022231c3f1af70e0cc42f0c3781eabf174cff608210585bf93fc83e16d33672d")
	if bs.Size() != 64<<30 {
		t.Fatalf("size %d", bs.Size())
	}
	// Every mapped range, and some holes, read the same.
	for _, m := range local.Index().Mappings() {
		off, n := int64(m.Offset)*512, int64(m.Length)*512
		a, b := make([]byte, n), make([]byte, n)
		if _, err := bs.ReadAt(a, off); err != nil {
			t.Fatal(err)
		}
		local.ReadAt(b, off)
		if !bytes.Equal(a, b) {
			t.Fatalf("mapping %v differs", m)
		}
	}
}
