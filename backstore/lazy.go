package backstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxRun bounds the bytes of one range request: long runs of missing units
// are split so that one slow request does not hold up everything.
const maxRun = 4 << 20

// lazyBlob is a blob read through the cache: missing units are fetched on
// first use, and concurrent readers of the same missing unit share one fetch.
type lazyBlob struct {
	ctx    context.Context // the backstore's lifetime
	layer  int
	digest v1.Hash
	size   int64
	cache  *cachedBlob
	fetch  Fetcher
	obs    []Observer

	mu       sync.Mutex
	inflight map[int]*call
	demand   *atomic.Int64 // the backstore's count of demand fetches in flight
}

// call is one fetch in flight, covering some units.
type call struct {
	done chan struct{}
	err  error
}

// ReadAt reads blob bytes, fetching what is missing for demand.
func (b *lazyBlob) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= b.size {
		return 0, fmt.Errorf("blob %s: read at %d outside %d bytes", b.digest, off, b.size)
	}
	n := min(int64(len(p)), b.size-off)
	if err := b.ensure(b.ctx, off, n, CauseDemand); err != nil {
		return 0, err
	}
	b.cache.rw.RLock()
	defer b.cache.rw.RUnlock()
	// A unit dropped between ensure and here (checksum retry, eviction) is
	// fetched again.
	for tries := 0; !b.held(off, n); tries++ {
		b.cache.rw.RUnlock()
		err := b.ensure(b.ctx, off, n, CauseDemand)
		b.cache.rw.RLock()
		if err != nil {
			return 0, err
		}
		if tries == 3 {
			return 0, fmt.Errorf("blob %s: bytes %d+%d keep being evicted", b.digest, off, n)
		}
	}
	if err := b.cache.readAt(p[:n], off); err != nil {
		return 0, err
	}
	if n < int64(len(p)) {
		return int(n), fmt.Errorf("blob %s: read past the end", b.digest)
	}
	return int(n), nil
}

func (b *lazyBlob) units(off, n int64) (int, int) {
	u := b.cache.c.unit
	return int(off / u), int((off + n - 1) / u)
}

// held reports whether every unit of [off, off+n) is in the cache.
func (b *lazyBlob) held(off, n int64) bool {
	first, last := b.units(off, n)
	for i := first; i <= last; i++ {
		if !b.cache.has(i) {
			return false
		}
	}
	return true
}

// ensure makes [off, off+n) present in the cache: it fetches the missing
// units nobody is fetching yet, in runs of adjacent units, and waits for the
// ones already in flight.
func (b *lazyBlob) ensure(ctx context.Context, off, n int64, cause Cause) error {
	first, last := b.units(off, n)
	var wait []*call
	type run struct {
		first, last int
		c           *call
	}
	var runs []run
	b.mu.Lock()
	for i := first; i <= last; i++ {
		if c, ok := b.inflight[i]; ok {
			wait = append(wait, c)
			continue
		}
		if b.cache.has(i) {
			continue
		}
		unit := b.cache.c.unit
		if k := len(runs); k > 0 && runs[k-1].last == i-1 && int64(i-runs[k-1].first+1)*unit <= maxRun {
			runs[k-1].last = i
		} else {
			runs = append(runs, run{first: i, last: i, c: &call{done: make(chan struct{})}})
		}
		b.inflight[i] = runs[len(runs)-1].c
	}
	b.mu.Unlock()

	var wg sync.WaitGroup
	for k := range runs {
		r := runs[k]
		fetchRun := func() {
			r.c.err = b.fetchRun(ctx, r.first, r.last, cause)
			b.mu.Lock()
			for i := r.first; i <= r.last; i++ {
				delete(b.inflight, i)
			}
			b.mu.Unlock()
			close(r.c.done)
		}
		if k == len(runs)-1 {
			fetchRun() // the last one in this goroutine
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); fetchRun() }()
	}
	wg.Wait()
	for _, r := range runs {
		if r.c.err != nil {
			return r.c.err
		}
	}
	for _, c := range wait {
		select {
		case <-c.done:
			if c.err != nil {
				return c.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// fetchRun fetches units first..last in one range request and stores them.
func (b *lazyBlob) fetchRun(ctx context.Context, first, last int, cause Cause) error {
	off, _ := b.cache.unitRange(first)
	_, end := b.cache.unitRange(last)
	buf := make([]byte, end-off)
	if cause == CauseDemand && b.demand != nil {
		b.demand.Add(1)
		defer b.demand.Add(-1)
	}
	start := time.Now()
	attempts, err := b.fetch.Fetch(ctx, buf, off)
	if err == nil {
		err = b.cache.store(first, buf)
	}
	if len(b.obs) > 0 {
		ev := BlobFetch{Layer: b.layer, Digest: b.digest, Offset: off, Length: end - off, Cause: cause,
			Start: start, Latency: time.Since(start), Attempts: attempts, Err: err}
		for _, o := range b.obs {
			o.BlobFetch(ev)
		}
	}
	if err != nil {
		return fmt.Errorf("layer %d blob %s: %w", b.layer, b.digest, err)
	}
	return nil
}

// dropRange forgets the cached units that hold blob bytes [start, end).
func (b *lazyBlob) dropRange(start, end int64) error {
	first, last := b.units(start, end-start)
	return b.cache.drop(first, last)
}
