package backstore_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
)

// shaped puts a netshape proxy in front of the test registry and returns
// the image reference through it.
func shaped(t *testing.T, reg *countingRegistry, ref string, opts ...netshape.Option) (*netshape.Proxy, string) {
	t.Helper()
	p, err := netshape.Start("http://"+reg.host, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, strings.Replace(ref, reg.host, p.Addr(), 1)
}

// TestFaultyRegistry: with 20% of range GETs failing (5xx, resets, stalls)
// every byte still comes out right.
func TestFaultyRegistry(t *testing.T) {
	reg := startRegistry(t)
	ref, layer, _ := builtImage(t, reg, 2000)
	local := localDevice(t, layer)
	want := readAll(t, local, local.Size())
	p, sref := shaped(t, reg, ref, netshape.WithFaults(netshape.Faults{
		Rate: 0.2, Kinds: []netshape.FaultKind{netshape.Fault5xx, netshape.FaultReset, netshape.FaultStall}, Seed: 42, StallFor: 5 * time.Second,
	}))
	bs, err := backstore.Open(context.Background(), sref, backstore.WithCacheDir(t.TempDir()),
		backstore.WithFetchUnit(64<<10), backstore.WithRetry(8, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if !bytes.Equal(readAll(t, bs, bs.Size()), want) {
		t.Fatal("bytes differ behind a faulty link")
	}
	s := p.Stats()
	t.Logf("%d requests, faults injected: %v", s.Requests, s.Faults)
	if s.Faults["5xx"]+s.Faults["reset"]+s.Faults["stall"] == 0 {
		t.Fatal("no fault was injected")
	}
}

// TestFlippedBytesNeverReachReaders: a registry that corrupts some blob
// responses is caught by the checksums and repaired by refetching; one that
// corrupts every response makes reads fail, never return wrong bytes.
func TestFlippedBytesNeverReachReaders(t *testing.T) {
	reg := startRegistry(t)
	ref, layer, built := builtImage(t, reg, 1500)
	local := localDevice(t, layer)
	want := readAll(t, local, local.Size())

	p, sref := shaped(t, reg, ref, netshape.WithFaults(netshape.Faults{Rate: 0.3, Kinds: []netshape.FaultKind{netshape.FaultFlip}, Seed: 3}))
	// Which response gets flipped depends on the order concurrent requests
	// arrive in; eight retries make a block that stays bad by chance
	// (0.3^9) vanishingly rare, while a code path that serves flipped
	// bytes still fails at once.
	bs, err := backstore.Open(context.Background(), sref, backstore.WithCacheDir(t.TempDir()), backstore.WithFetchUnit(64<<10),
		backstore.WithChecksumRetries(8))
	if err != nil {
		t.Fatal(err)
	}
	// Small reads, so that the blob is fetched in many requests.
	if !bytes.Equal(readAllBy(t, bs, bs.Size(), 64<<10), want) {
		t.Fatal("flipped bytes reached the reader")
	}
	bs.Close()
	flips := p.Stats().Faults["flip"]
	t.Logf("%d responses flipped, all repaired", flips)
	if flips == 0 {
		t.Fatal("no response was flipped")
	}

	// Every response for the layer corrupt, once its indexes are cached:
	// the reads must fail with ErrCorrupt, never return wrong bytes.
	cache := t.TempDir()
	p.SetFaults(netshape.Faults{})
	bs, err = backstore.Open(context.Background(), sref, backstore.WithCacheDir(cache), backstore.WithFetchUnit(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	bs.Close()
	m, _ := built.Image.Manifest()
	p.SetFaults(netshape.Faults{Rate: 1, Kinds: []netshape.FaultKind{netshape.FaultFlip}, Seed: 4,
		Match: regexp.MustCompile("/blobs/" + m.Layers[0].Digest.String() + "$")})
	bs, err = backstore.Open(context.Background(), sref, backstore.WithCacheDir(cache), backstore.WithFetchUnit(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	buf := make([]byte, 1<<20)
	failed := 0
	for off := int64(0); off < bs.Size(); off += int64(len(buf)) {
		n := min(int64(len(buf)), bs.Size()-off)
		if _, err := bs.ReadAt(buf[:n], off); err != nil {
			failed++
			if !errors.Is(err, backstore.ErrCorrupt) {
				t.Fatalf("read at %d: %v, want ErrCorrupt", off, err)
			}
			continue
		}
		if !bytes.Equal(buf[:n], want[off:off+n]) {
			t.Fatalf("wrong bytes at %d reached the reader", off)
		}
	}
	if failed == 0 {
		t.Fatal("no read failed although every response was corrupt")
	}
}

// readAllBy reads the device in chunks of n bytes.
func readAllBy(t *testing.T, r interface {
	ReadAt([]byte, int64) (int, error)
}, size, n int64) []byte {
	t.Helper()
	out := make([]byte, size)
	for off := int64(0); off < size; off += n {
		k := min(n, size-off)
		if _, err := r.ReadAt(out[off:off+k], off); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", off, k, err)
		}
	}
	return out
}
