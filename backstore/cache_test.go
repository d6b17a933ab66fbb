package backstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/backstore"
)

// TestCorruptCacheIsRefetched flips bytes in the cache's copy of a blob (as
// a bad disk would) and expects the next read to notice, fetch again and
// return the right bytes.
func TestCorruptCacheIsRefetched(t *testing.T) {
	reg := startRegistry(t)
	ref, layer, built := builtImage(t, reg, 100)
	local := localDevice(t, layer)
	want := readAll(t, local, local.Size())
	cache := t.TempDir()
	bs, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, bs, bs.Size())
	bs.Close()

	m, _ := built.Image.Manifest()
	data := filepath.Join(cache, "blobs", "sha256", m.Layers[0].Digest.Hex+".data")
	f, err := os.OpenFile(data, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte every 64 KiB through the data area of the blob.
	fi, _ := f.Stat()
	flipped := 0
	for off := int64(64 << 10); off < fi.Size()-4096; off += 64 << 10 {
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0x5a
		f.WriteAt(b, off)
		flipped++
	}
	f.Close()

	reg.Reset()
	bs, err = backstore.Open(context.Background(), ref, backstore.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if got := readAll(t, bs, bs.Size()); !bytes.Equal(got, want) {
		t.Fatal("bytes differ after refetching corrupt units")
	}
	if reg.BlobGets() == 0 {
		t.Fatalf("%d corrupt bytes were served without a refetch", flipped)
	}
	t.Logf("%d flipped bytes, %d blob GETs to repair them", flipped, reg.BlobGets())
}

// TestCacheBound: with a bound smaller than the image, a full read works and
// the cache stays under the bound.
func TestCacheBound(t *testing.T) {
	reg := startRegistry(t)
	ref, layer, _ := builtImage(t, reg, 300)
	local := localDevice(t, layer)
	want := readAll(t, local, local.Size())
	cache := t.TempDir()
	const limit = 2 << 20
	bs, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(cache), backstore.WithCacheLimit(limit), backstore.WithFetchUnit(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if !bytes.Equal(readAll(t, bs, bs.Size()), want) {
		t.Fatal("bytes differ under a small cache bound")
	}
	c, err := backstore.OpenCache(cache, 64<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if u := c.Used(); u > limit {
		t.Fatalf("cache holds %d bytes, bound %d", u, limit)
	}
}

// TestCacheLimitTooSmall: a bound that cannot hold the demand reads in
// flight (it used to fail at the first read with "keep being evicted") is
// refused by Open, naming the minimum; a bound of exactly the minimum
// reads the whole image.
func TestCacheLimitTooSmall(t *testing.T) {
	reg := startRegistry(t)
	ref, layer, _ := builtImage(t, reg, 300)
	for _, limit := range []int64{-1, 1, backstore.MinCacheLimit(64<<10) - 1} {
		_, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(t.TempDir()), backstore.WithCacheLimit(limit), backstore.WithFetchUnit(64<<10))
		if err == nil || !strings.Contains(err.Error(), "at least 1048576 bytes") {
			t.Errorf("limit %d: %v; want an error naming the minimum", limit, err)
		}
	}
	bs, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(t.TempDir()), backstore.WithCacheLimit(backstore.MinCacheLimit(64<<10)), backstore.WithFetchUnit(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	local := localDevice(t, layer)
	if !bytes.Equal(readAll(t, bs, bs.Size()), readAll(t, local, local.Size())) {
		t.Fatal("bytes differ under the smallest cache bound")
	}
}

func TestOpenErrors(t *testing.T) {
	reg := startRegistry(t)
	_, err := backstore.Open(context.Background(), reg.host+"/missing:tag", backstore.WithCacheDir(t.TempDir()))
	if err == nil {
		t.Fatal("opened a missing image")
	}
	layout := "oci:" + filepath.Join(t.TempDir(), "nothing")
	if _, err := backstore.Open(context.Background(), layout, backstore.WithCacheDir(t.TempDir())); err == nil {
		t.Fatal("opened a missing layout")
	}
	if _, err := backstore.Open(context.Background(), "file:a,b"); err == nil {
		t.Fatal("opened file: layers")
	}
}
