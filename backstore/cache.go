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

// Cache keeps blob bytes on local disk in fetch units, per blob digest, and
// remembers across restarts which units it holds. Bytes are stored as the
// registry sent them (compressed); they are verified when decoded.
type Cache struct {
	dir   string
	unit  int64
	limit int64 // bytes; 0 means no bound

	mu    sync.Mutex
	blobs map[string]*cachedBlob
	used  int64 // bytes of units held, over every blob on disk
	clock atomic.Uint64
}

// cacheFileMode is the mode of cache files: blob bytes of images the host
// pulls, readable by root only.
const cacheFileMode = 0o600

// OpenCache opens (or creates) a cache in dir with the given fetch unit and
// size bound (0: unbounded), counting what earlier runs left there.
func OpenCache(dir string, unit, limit int64) (*Cache, error) {
	if unit <= 0 || unit%4096 != 0 {
		return nil, fmt.Errorf("cache: fetch unit %d is not a positive multiple of 4 KiB", unit)
	}
	bdir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{dir: dir, unit: unit, limit: limit, blobs: map[string]*cachedBlob{}}
	entries, err := os.ReadDir(bdir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".units") {
			continue
		}
		bits, err := os.ReadFile(filepath.Join(bdir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		c.used += int64(popcount(bits)) * unit
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
func (c *Cache) Unit() int64 { return c.unit }

// Used returns the bytes of units held.
func (c *Cache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// cachedBlob is one blob's bytes in the cache: a sparse data file and a
// bitmap of the units it holds.
type cachedBlob struct {
	c      *Cache
	hex    string
	size   int64
	nunits int

	// rw is held shared while units are read and exclusively while they
	// are dropped, so that a reader never sees a unit vanish mid-read.
	rw      sync.RWMutex
	mu      sync.Mutex // guards bits and the bitmap file
	bits    []byte
	data    *os.File
	units   *os.File
	lastUse []atomic.Uint64
	refs    int
}

func (c *Cache) paths(hex string) (data, units string) {
	base := filepath.Join(c.dir, "blobs", "sha256", hex)
	return base + ".data", base + ".units"
}

// blob opens the cache entry of a blob, creating it if needed.
func (c *Cache) blob(d v1.Hash, size int64) (*cachedBlob, error) {
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
	dataPath, unitsPath := c.paths(d.Hex)
	data, err := os.OpenFile(dataPath, os.O_RDWR|os.O_CREATE, cacheFileMode)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	units, err := os.OpenFile(unitsPath, os.O_RDWR|os.O_CREATE, cacheFileMode)
	if err != nil {
		data.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	nunits := int((size + c.unit - 1) / c.unit)
	b := &cachedBlob{c: c, hex: d.Hex, size: size, nunits: nunits, data: data, units: units,
		bits: make([]byte, (nunits+7)/8), lastUse: make([]atomic.Uint64, nunits), refs: 1}
	fail := func(err error) (*cachedBlob, error) {
		data.Close()
		units.Close()
		return nil, fmt.Errorf("cache: blob %s: %w", d, err)
	}
	fi, err := data.Stat()
	if err != nil {
		return fail(err)
	}
	old, err := os.ReadFile(unitsPath)
	if err != nil {
		return fail(err)
	}
	if fi.Size() != size || len(old) != len(b.bits) {
		// New, or left in another shape: start over.
		c.used -= int64(popcount(old)) * c.unit
		if err := data.Truncate(0); err != nil {
			return fail(err)
		}
		if err := data.Truncate(size); err != nil {
			return fail(err)
		}
		if err := units.Truncate(0); err != nil {
			return fail(err)
		}
		if _, err := units.WriteAt(b.bits, 0); err != nil {
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
	return errors.Join(b.data.Close(), b.units.Close())
}

func (b *cachedBlob) has(i int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bits[i/8]&(1<<(i%8)) != 0
}

// unitRange returns the byte range of unit i.
func (b *cachedBlob) unitRange(i int) (int64, int64) {
	off := int64(i) * b.c.unit
	return off, min(off+b.c.unit, b.size)
}

// store writes the bytes of units first.. (p starts at unit first) and marks
// them held. The data is written before the bitmap, so a crash between the
// two leaves a unit unmarked, never marked and missing.
func (b *cachedBlob) store(first int, p []byte) error {
	off, _ := b.unitRange(first)
	if _, err := b.data.WriteAt(p, off); err != nil {
		return fmt.Errorf("cache: write blob %s at %d: %w", b.hex[:12], off, err)
	}
	last := first + int((int64(len(p))+b.c.unit-1)/b.c.unit) - 1
	b.mu.Lock()
	added := 0
	for i := first; i <= last; i++ {
		if b.bits[i/8]&(1<<(i%8)) == 0 {
			b.bits[i/8] |= 1 << (i % 8)
			added++
		}
		b.lastUse[i].Store(b.c.clock.Add(1))
	}
	lo, hi := first/8, last/8+1
	_, err := b.units.WriteAt(b.bits[lo:hi], int64(lo))
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cache: write unit map of %s: %w", b.hex[:12], err)
	}
	b.c.account(int64(added) * b.c.unit)
	return nil
}

// drop forgets units first..last and frees their space.
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
	_, err := b.units.WriteAt(b.bits[lo:hi], int64(lo))
	b.mu.Unlock()
	b.c.mu.Lock()
	b.c.used -= int64(removed) * b.c.unit
	b.c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cache: write unit map of %s: %w", b.hex[:12], err)
	}
	off, _ := b.unitRange(first)
	_, end := b.unitRange(last)
	// Punching a hole frees the space; a file system without it keeps the
	// bytes, which is harmless once the unit is unmarked.
	_ = unix.Fallocate(int(b.data.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, end-off)
	return nil
}

// readAt reads held bytes; the caller holds b.rw shared.
func (b *cachedBlob) readAt(p []byte, off int64) error {
	if _, err := b.data.ReadAt(p, off); err != nil {
		return fmt.Errorf("cache: read blob %s at %d: %w", b.hex[:12], off, err)
	}
	first, last := int(off/b.c.unit), int((off+int64(len(p))-1)/b.c.unit)
	t := b.c.clock.Add(1)
	for i := first; i <= last; i++ {
		b.lastUse[i].Store(t)
	}
	return nil
}

// account adds n bytes of held units and evicts when over the bound.
func (c *Cache) account(n int64) {
	c.mu.Lock()
	c.used += n
	over := c.limit > 0 && c.used > c.limit
	c.mu.Unlock()
	if over {
		c.evict()
	}
}

// evict frees space down to 90% of the bound: first whole blobs that no
// open image uses, oldest first, then the least recently used units of open
// blobs.
func (c *Cache) evict() {
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
		for i := 0; i < b.nunits; i++ {
			if b.has(i) {
				cands = append(cands, cand{b, i, b.lastUse[i].Load()})
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
		k.b.drop(k.i, k.i)
	}
}

// evictClosed deletes the cache files of blobs no open image uses.
func (c *Cache) evictClosed(open map[string]bool, target int64) {
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
		hex, ok := strings.CutSuffix(e.Name(), ".units")
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
		dataPath, unitsPath := c.paths(o.hex)
		bits, _ := os.ReadFile(unitsPath)
		c.mu.Lock()
		if c.blobs[o.hex] != nil { // opened meanwhile
			c.mu.Unlock()
			continue
		}
		os.Remove(unitsPath)
		os.Remove(dataPath)
		c.used -= int64(popcount(bits)) * c.unit
		c.mu.Unlock()
	}
}
