package backstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// ErrCorrupt is returned when a range keeps failing its checksum after it
// was fetched again.
var ErrCorrupt = errors.New("data keeps failing its checksum after refetching")

// ReadAt reads the virtual device.
func (b *Backstore) ReadAt(p []byte, off int64) (int, error) {
	if len(b.obs) == 0 {
		return b.readAt(p, off)
	}
	start := time.Now()
	cached := b.Cached(off, int64(len(p)))
	n, err := b.readAt(p, off)
	ev := DeviceRead{Offset: off, Length: int64(len(p)), Start: start, Latency: time.Since(start), Cached: cached, Err: err}
	for _, o := range b.obs {
		o.DeviceRead(ev)
	}
	return n, err
}

func (b *Backstore) readAt(p []byte, off int64) (int, error) {
	// Retries are counted per block: a read spanning many blocks that a
	// bad disk or link corrupted repairs them one after another, while a
	// block that stays bad after its retries is an error.
	var fails map[[2]int64]int // made on the first fault: reads are the hot path
	for try := 0; ; try++ {
		n, err := b.dev.ReadAt(p, off)
		var bf *blockFault
		if err == nil || !errors.As(err, &bf) {
			return n, err
		}
		if fails == nil {
			fails = map[[2]int64]int{}
		}
		key := [2]int64{int64(bf.layer), bf.start}
		if fails[key]++; fails[key] > b.retries || try >= maxRepairs {
			return n, fmt.Errorf("backstore: device bytes %d+%d: %w: %v", off, len(p), ErrCorrupt, err)
		}
		if derr := b.refetch(bf); derr != nil {
			return n, derr
		}
	}
}

// maxRepairs bounds the refetches of one read, whatever blocks fail.
const maxRepairs = 256

// refetch drops the cached bytes of a block that failed its checksum, so
// that the next read fetches them again.
func (b *Backstore) refetch(bf *blockFault) error {
	l := b.layers[bf.layer]
	b.log.Debug("backstore: checksum failure, refetching", "layer", bf.layer, "digest", l.Descriptor.Digest, "start", bf.start, "end", bf.end)
	return l.lazy.dropRange(l.blob.PayloadOffset+bf.start, l.blob.PayloadOffset+bf.end)
}

// BlobRange is a byte range of a layer blob.
type BlobRange struct {
	Layer      int
	Start, End int64
}

// BlobRanges maps device bytes [off, off+n) to the layer blob ranges that
// hold them (what a range request would fetch), in device order.
func (b *Backstore) BlobRanges(off, n int64) []BlobRange {
	if off < 0 || n <= 0 || off >= b.Size() {
		return nil
	}
	n = min(n, b.Size()-off)
	start := uint64(off) / lsmt.SectorSize
	end := (uint64(off+n) + lsmt.SectorSize - 1) / lsmt.SectorSize
	var out []BlobRange
	var buf [16]lsmt.Mapping
	for _, m := range b.dev.Index().Lookup(buf[:0], start, end) {
		if m.Zeroed {
			continue
		}
		l := b.layers[m.Tag]
		s, e := l.blob.BlobRange(int64(m.MOffset)*lsmt.SectorSize, int64(m.Length)*lsmt.SectorSize)
		if s < e {
			out = append(out, BlobRange{Layer: int(m.Tag), Start: s, End: e})
		}
	}
	return out
}

// Cached reports whether every blob byte that device bytes [off, off+n)
// need is in the cache.
func (b *Backstore) Cached(off, n int64) bool {
	for _, r := range b.BlobRanges(off, n) {
		if !b.layers[r.Layer].lazy.held(r.Start, r.End-r.Start) {
			return false
		}
	}
	return true
}
