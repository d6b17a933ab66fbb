package backstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// diskCache keeps blob bytes on local disk, per blob digest, and remembers
// across restarts which 512-byte pages of each blob it holds. Bytes are stored
// as the registry sent them (compressed); they are verified when decoded.
//
// Pages, not fetch units, are what the cache tracks: a prefetch fetches the
// exact compressed ranges a start needs, and rounding each of those up to a
// 256 KiB unit would move a third more bytes than the start reads. Demand
// reads still fetch whole units (see lazyBlob.ensure), and eviction and
// recency work on units.
type diskCache struct {
	dir   string
	unit  int64
	limit int64 // bytes; 0 means no bound

	mu    sync.Mutex
	blobs map[string]*cachedBlob
	used  int64 // bytes of pages held, over every blob on disk
	clock atomic.Uint64
}

// pageSize is the granularity at which the cache tracks what it holds:
// small, because a start's ranges are compressed blocks of a few KiB at
// arbitrary offsets and every page rounded up is a byte on the wire.
const pageSize = 512

// mapSuffix names a blob's page map; caches of the older unit-map format
// (".units") are removed when the cache opens.
const mapSuffix = ".pages"

// cacheFileMode is the mode of cache files: blob bytes of images the host
// pulls, readable by root only.
const cacheFileMode = 0o600

// openDiskCache opens (or creates) a cache in dir with the given fetch unit and
// size bound (0: unbounded), counting what earlier runs left there.
func openDiskCache(dir string, unit, limit int64) (*diskCache, error) {
	if unit <= 0 || unit%4096 != 0 {
		return nil, fmt.Errorf("cache: fetch unit %d is not a positive multiple of 4 KiB", unit)
	}
	bdir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &diskCache{dir: dir, unit: unit, limit: limit, blobs: map[string]*cachedBlob{}}
	entries, err := os.ReadDir(bdir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, e := range entries {
		if hex, ok := strings.CutSuffix(e.Name(), ".units"); ok {
			// An older cache layout: its bytes are not worth a migration.
			os.Remove(filepath.Join(bdir, e.Name()))
			os.Remove(filepath.Join(bdir, hex+".data"))
			continue
		}
		if !strings.HasSuffix(e.Name(), mapSuffix) {
			continue
		}
		bits, err := os.ReadFile(filepath.Join(bdir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		c.used += int64(popcount(bits)) * pageSize
	}
	return c, nil
}

func popcount(b []byte) int {
	n := 0
	for _, x := range b {
		for ; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}

// Unit returns the fetch unit.
func (c *diskCache) Unit() int64 { return c.unit }

// Used returns the bytes of pages held.
func (c *diskCache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// cachedBlob is one blob's bytes in the cache: a sparse data file and a
// bitmap of the pages it holds.
type cachedBlob struct {
	c      *diskCache
	hex    string
	size   int64
	npages int
	nunits int

	// rw is held shared while pages are read and exclusively while they
	// are dropped, so that a reader never sees a page vanish mid-read.
	rw      sync.RWMutex
	mu      sync.Mutex // guards bits and the bitmap file
	bits    []byte
	data    *os.File
	pages   *os.File
	lastUse []atomic.Uint64 // per fetch unit
	refs    int
}

func (c *diskCache) paths(hex string) (data, pages string) {
	base := filepath.Join(c.dir, "blobs", "sha256", hex)
	return base + ".data", base + mapSuffix
}

// blob opens the cache entry of a blob, creating it if needed.
func (c *diskCache) blob(d v1.Hash, size int64) (*cachedBlob, error) {
	if d.Algorithm != "sha256" || len(d.Hex) != 64 || strings.ContainsAny(d.Hex, "/.") {
		return nil, fmt.Errorf("cache: unsupported digest %s", d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.blobs[d.Hex]; ok {
		if b.size != size {
			return nil, fmt.Errorf("cache: blob %s opened with sizes %d and %d", d, b.size, size)
		}
		b.refs++
		return b, nil
	}
	dataPath, pagesPath := c.paths(d.Hex)
	data, err := os.OpenFile(dataPath, os.O_RDWR|os.O_CREATE, cacheFileMode)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	pages, err := os.OpenFile(pagesPath, os.O_RDWR|os.O_CREATE, cacheFileMode)
	if err != nil {
		data.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	npages := int((size + pageSize - 1) / pageSize)
	nunits := int((size + c.unit - 1) / c.unit)
	b := &cachedBlob{c: c, hex: d.Hex, size: size, npages: npages, nunits: nunits, data: data, pages: pages,
		bits: make([]byte, (npages+7)/8), lastUse: make([]atomic.Uint64, nunits), refs: 1}
	fail := func(err error) (*cachedBlob, error) {
		data.Close()
		pages.Close()
		return nil, fmt.Errorf("cache: blob %s: %w", d, err)
	}
	fi, err := data.Stat()
	if err != nil {
		return fail(err)
	}
	old, err := os.ReadFile(pagesPath)
	if err != nil {
		return fail(err)
	}
	if fi.Size() != size || len(old) != len(b.bits) {
		// New, or left in another shape: start over.
		c.used -= int64(popcount(old)) * pageSize
		if err := data.Truncate(0); err != nil {
			return fail(err)
		}
		if err := data.Truncate(size); err != nil {
			return fail(err)
		}
		if err := pages.Truncate(0); err != nil {
			return fail(err)
		}
		if _, err := pages.WriteAt(b.bits, 0); err != nil {
			return fail(err)
		}
	} else {
		copy(b.bits, old)
	}
	c.blobs[d.Hex] = b
	return b, nil
}

// close releases one reference; the last one closes the files.
func (b *cachedBlob) close() error {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.refs--; b.refs > 0 {
		return nil
	}
	delete(c.blobs, b.hex)
	return errors.Join(b.data.Close(), b.pages.Close())
}

// has reports whether page i is held.
func (b *cachedBlob) has(i int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bits[i/8]&(1<<(i%8)) != 0
}

// hasAll reports whether pages first..last are all held, under one lock:
// a 512 KiB read spans a thousand pages.
func (b *cachedBlob) hasAll(first, last int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := first; i <= last; {
		if i%8 == 0 && i+7 <= last {
			if b.bits[i/8] != 0xff {
				return false
			}
			i += 8
			continue
		}
		if b.bits[i/8]&(1<<(i%8)) == 0 {
			return false
		}
		i++
	}
	return true
}

// pageRange returns the byte range of pages first..last.
func (b *cachedBlob) pageRange(first, last int) (int64, int64) {
	return int64(first) * pageSize, min(int64(last+1)*pageSize, b.size)
}

// unitPages returns the pages of fetch unit u.
func (b *cachedBlob) unitPages(u int) (int, int) {
	per := int(b.c.unit / pageSize)
	return u * per, min((u+1)*per, b.npages) - 1
}

// store writes p, the bytes of pages first.. (a whole number of pages, or
// up to the end of the blob), and marks them held. The data is written
// before the bitmap, so a crash between the two leaves a page unmarked,
// never marked and missing.
func (b *cachedBlob) store(first int, p []byte) error {
	off := int64(first) * pageSize
	if end := off + int64(len(p)); len(p) == 0 || end > b.size || (end%pageSize != 0 && end != b.size) {
		return fmt.Errorf("cache: store of %d bytes at %d does not end on a page of blob %s", len(p), off, b.hex[:12])
	}
	if _, err := b.data.WriteAt(p, off); err != nil {
		return fmt.Errorf("cache: write blob %s at %d: %w", b.hex[:12], off, err)
	}
	last := first + int((int64(len(p))+pageSize-1)/pageSize) - 1
	t := b.c.clock.Add(1)
	b.mu.Lock()
	added := 0
	for i := first; i <= last; i++ {
		if b.bits[i/8]&(1<<(i%8)) == 0 {
			b.bits[i/8] |= 1 << (i % 8)
			added++
		}
	}
	for u := off / b.c.unit; u <= (off+int64(len(p))-1)/b.c.unit; u++ {
		b.lastUse[u].Store(t)
	}
	lo, hi := first/8, last/8+1
	_, err := b.pages.WriteAt(b.bits[lo:hi], int64(lo))
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cache: write page map of %s: %w", b.hex[:12], err)
	}
	b.c.account(int64(added) * pageSize)
	return nil
}

// drop forgets pages first..last and frees their space.
func (b *cachedBlob) drop(first, last int) error {
	b.rw.Lock()
	defer b.rw.Unlock()
	return b.dropLocked(first, last)
}

func (b *cachedBlob) dropLocked(first, last int) error {
	b.mu.Lock()
	removed := 0
	for i := first; i <= last; i++ {
		if b.bits[i/8]&(1<<(i%8)) != 0 {
			b.bits[i/8] &^= 1 << (i % 8)
			removed++
		}
	}
	lo, hi := first/8, last/8+1
	_, err := b.pages.WriteAt(b.bits[lo:hi], int64(lo))
	b.mu.Unlock()
	b.c.mu.Lock()
	b.c.used -= int64(removed) * pageSize
	b.c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cache: write page map of %s: %w", b.hex[:12], err)
	}
	off, end := b.pageRange(first, last)
	// Punching a hole frees the space; a file system without it keeps the
	// bytes, which is harmless once the page is unmarked.
	_ = unix.Fallocate(int(b.data.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, end-off)
	return nil
}

// readAt reads held bytes; the caller holds b.rw shared.
func (b *cachedBlob) readAt(p []byte, off int64) error {
	if _, err := b.data.ReadAt(p, off); err != nil {
		return fmt.Errorf("cache: read blob %s at %d: %w", b.hex[:12], off, err)
	}
	t := b.c.clock.Add(1)
	for u := off / b.c.unit; u <= (off+int64(len(p))-1)/b.c.unit; u++ {
		b.lastUse[u].Store(t)
	}
	return nil
}

// account adds n bytes of held pages and evicts when over the bound.
func (c *diskCache) account(n int64) {
	c.mu.Lock()
	c.used += n
	over := c.limit > 0 && c.used > c.limit
	c.mu.Unlock()
	if over {
		c.evict()
	}
}

// evict frees space down to 90% of the bound: first whole blobs that no
// open image uses, oldest first, then the least recently used fetch units
// of open blobs.
func (c *diskCache) evict() {
	target := c.limit / 10 * 9
	c.mu.Lock()
	open := map[string]bool{}
	var blobs []*cachedBlob
	for hex, b := range c.blobs {
		open[hex] = true
		blobs = append(blobs, b)
	}
	c.mu.Unlock()
	if c.Used() > target {
		c.evictClosed(open, target)
	}
	if c.Used() <= target {
		return
	}
	type cand struct {
		b   *cachedBlob
		i   int
		use uint64
	}
	var cands []cand
	for _, b := range blobs {
		for u := 0; u < b.nunits; u++ {
			first, last := b.unitPages(u)
			for i := first; i <= last; i++ {
				if b.has(i) {
					cands = append(cands, cand{b, u, b.lastUse[u].Load()})
					break
				}
			}
		}
	}
	slices.SortFunc(cands, func(x, y cand) int {
		if x.use < y.use {
			return -1
		}
		if x.use > y.use {
			return 1
		}
		return 0
	})
	for _, k := range cands {
		if c.Used() <= target {
			return
		}
		k.b.drop(k.b.unitPages(k.i))
	}
}

// evictClosed deletes the cache files of blobs no open image uses.
func (c *diskCache) evictClosed(open map[string]bool, target int64) {
	bdir := filepath.Join(c.dir, "blobs", "sha256")
	entries, err := os.ReadDir(bdir)
	if err != nil {
		return
	}
	type old struct {
		hex  string
		info fs.FileInfo
	}
	var olds []old
	for _, e := range entries {
		hex, ok := strings.CutSuffix(e.Name(), mapSuffix)
		if !ok || open[hex] {
			continue
		}
		if fi, err := e.Info(); err == nil {
			olds = append(olds, old{hex, fi})
		}
	}
	slices.SortFunc(olds, func(a, b old) int { return a.info.ModTime().Compare(b.info.ModTime()) })
	for _, o := range olds {
		if c.Used() <= target {
			return
		}
		dataPath, pagesPath := c.paths(o.hex)
		bits, _ := os.ReadFile(pagesPath)
		c.mu.Lock()
		if c.blobs[o.hex] != nil { // opened meanwhile
			c.mu.Unlock()
			continue
		}
		os.Remove(pagesPath)
		os.Remove(dataPath)
		c.used -= int64(popcount(bits)) * pageSize
		c.mu.Unlock()
	}
}
