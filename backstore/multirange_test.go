package backstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/internal/testutil/distreg"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// TestPrefetchExact prefetches 24 scattered ranges of a layer from three
// real registries: the embedded one and the distribution registry answer
// them in one multi-range request; go-containerregistry's registry answers
// only the first range, and the backstore falls back to one request a
// range. Every way, exactly the asked pages arrive, with the right bytes.
func TestPrefetchExact(t *testing.T) {
	reg := startRegistry(t)
	ggcrRef, layerPath, built := builtImage(t, reg, 600)
	local := localDevice(t, layerPath)
	want := readAll(t, local, local.Size())
	blob, err := os.ReadFile(layerPath)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := built.Image.Manifest()
	digest := m.Layers[0].Digest

	push := func(host string) string {
		ref := host + "/app:v1"
		r, err := imageref.Parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := imageref.WriteImage(context.Background(), r, built.Image); err != nil {
			t.Fatal(err)
		}
		return ref
	}
	embedded := testreg.Start(t)

	// Ranges spread over the blob, 3–20 KiB, none on a page boundary,
	// away from the headers and indexes that opening the image fetched.
	var ranges []backstore.Extent
	var pageBytes int64
	size := int64(len(blob))
	if size < 4<<20 {
		t.Fatalf("blob of %d bytes: too small for this test", size)
	}
	for i := int64(0); i < 24; i++ {
		r := backstore.Extent{Offset: 1<<20 + i*(size-2<<20)/24 + 1000, Length: 3000 + i*700}
		ranges = append(ranges, r)
		pageBytes += ((r.End()+511)/512 - r.Offset/512) * 512
	}

	cases := []struct {
		name     string
		ref      func() string
		requests int64 // blob GETs for the prefetch (or one less: the probe may have happened at open)
	}{
		{"embedded", func() string { return push(embedded.Addr) }, 1},
		{"distribution", func() string { return push(distreg.Start(t)) }, 1},
		{"ggcr-first-range-only", func() string { return ggcrRef }, int64(len(ranges)) + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.ref()
			host := ref[:bytes.IndexByte([]byte(ref), '/')]
			p, err := netshape.Start("http://" + host)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			cache := t.TempDir()
			bs, err := backstore.Open(context.Background(), p.Addr()+ref[len(host):], backstore.WithCacheDir(cache))
			if err != nil {
				t.Fatal(err)
			}
			defer bs.Close()
			settled(p) // the proxy counts a request after its answer went out
			p.Reset()
			if err := bs.PrefetchExact(context.Background(), 0, ranges); err != nil {
				t.Fatal(err)
			}
			st := settled(p)
			t.Logf("%d requests, %d bytes for %d bytes of pages", st.BlobRanges, st.Bytes, pageBytes)
			if st.BlobRanges != tc.requests && !(tc.requests > 1 && st.BlobRanges == tc.requests-1) {
				t.Errorf("%d blob requests, want %d", st.BlobRanges, tc.requests)
			}
			// The pages and the parts' headers, nothing more.
			if st.Bytes < pageBytes || st.Bytes > pageBytes+int64(len(ranges))*200 {
				t.Errorf("%d bytes moved for %d bytes of pages", st.Bytes, pageBytes)
			}
			checkCached(t, cache, digest, blob, ranges)
			for _, r := range ranges {
				if !bs.Held(0, r.Offset, r.Length) {
					t.Fatalf("range %+v not held", r)
				}
			}
			// Nothing but the pages: the page after a range is missing
			// unless another range holds it.
			if r := ranges[0]; bs.Held(0, (r.End()+511)/512*512, 1) {
				t.Errorf("a page after the first range %+v (blob %d) was fetched too", r, size)
			}
			if tc.name == "ggcr-first-range-only" {
				// The verdict sticks: no second probe.
				settled(p)
				p.Reset()
				more := []backstore.Extent{{Offset: 1<<20 - 8000, Length: 100}, {Offset: size - 1<<20 + 5000, Length: 100}}
				if err := bs.PrefetchExact(context.Background(), 0, more); err != nil {
					t.Fatal(err)
				}
				if n := settled(p).BlobRanges; n != 2 {
					t.Errorf("%d requests for 2 ranges after the registry was found not to serve multi-range", n)
				}
			}
			if got := readAll(t, bs, bs.Size()); !bytes.Equal(got, want) {
				t.Fatal("device bytes differ after an exact prefetch")
			}
		})
	}
}

// checkCached compares the cache's copy of a blob with the blob itself over
// the given ranges.
func checkCached(t *testing.T, cache string, d v1.Hash, blob []byte, ranges []backstore.Extent) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cache, "blobs", "sha256", d.Hex+".data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		if !bytes.Equal(data[r.Offset:r.End()], blob[r.Offset:r.End()]) {
			t.Fatalf("cached bytes of %+v differ from the blob", r)
		}
	}
}

// settled returns the proxy's counters once they stop changing: it counts a
// request when its handler returns, which may be just after the client has
// read the whole answer.
func settled(p *netshape.Proxy) netshape.Stats {
	st := p.Stats()
	for i := 0; i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
		next := p.Stats()
		if next.Requests == st.Requests && next.Bytes == st.Bytes && next.Requests > 0 {
			return next
		}
		st = next
	}
	return st
}
