package backstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// lazyBlob is a blob read through the cache: missing pages are fetched on
// first use, and concurrent readers of the same missing page share one fetch.
type lazyBlob struct {
	ctx    context.Context // the backstore's lifetime
	layer  int
	digest v1.Hash
	size   int64
	cache  *cachedBlob
	fetch  fetcher
	obs    []Observer

	mu       sync.Mutex
	inflight map[int]*call // by page
	demand   *atomic.Int64 // the backstore's count of demand fetches in flight
}

// call is one fetch in flight, covering some pages.
type call struct {
	done chan struct{}
	err  error
}

// ReadAt reads blob bytes, fetching what is missing for demand.
func (b *lazyBlob) ReadAt(p []byte, off int64) (int, error) { return b.readAt(p, off, CauseDemand) }

// opening reads a blob's headers and indexes as the image opens. They are
// not demand: no program waits on them yet, so the prefetch need not hold
// off for them, and they are not counted as the program's misses.
type opening struct{ b *lazyBlob }

func (o opening) ReadAt(p []byte, off int64) (int, error) { return o.b.readAt(p, off, CauseOpen) }

func (b *lazyBlob) readAt(p []byte, off int64, cause Cause) (int, error) {
	if off < 0 || off >= b.size {
		return 0, fmt.Errorf("blob %s: read at %d outside %d bytes", b.digest, off, b.size)
	}
	n := min(int64(len(p)), b.size-off)
	b.cache.rw.RLock()
	defer b.cache.rw.RUnlock()
	// What is missing is fetched, and fetched again if it is dropped
	// (checksum retry, eviction) before it is read. Held bytes, the common
	// case, cost one look at the page map.
	for tries := 0; !b.held(off, n); tries++ {
		b.cache.rw.RUnlock()
		err := b.ensure(b.ctx, off, n, cause)
		b.cache.rw.RLock()
		if err != nil {
			return 0, err
		}
		if tries == 4 {
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

func (b *lazyBlob) pages(off, n int64) (int, int) {
	return int(off / pageSize), int((off + n - 1) / pageSize)
}

// held reports whether every page of [off, off+n) is in the cache.
func (b *lazyBlob) held(off, n int64) bool {
	first, last := b.pages(off, n)
	return b.cache.hasAll(first, last)
}

// Extent is a byte range of a blob.
type Extent struct{ Offset, Length int64 }

// End returns the first byte after the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// ensure makes [off, off+n) present in the cache for a read: what is
// missing of the fetch units around it is fetched (a demand read pays a
// round trip, so it brings its neighbourhood along), and pages already in
// flight are waited for.
func (b *lazyBlob) ensure(ctx context.Context, off, n int64, cause Cause) error {
	u := b.cache.c.unit
	lo, hi := off/u*u, min((off+n+u-1)/u*u, b.size)
	needFirst, needLast := b.pages(off, n)
	return b.get(ctx, []Extent{{lo, hi - lo}}, func(p int) bool { return p >= needFirst && p <= needLast }, cause)
}

// ensureExact makes exactly the given ranges (rounded out to pages) present,
// fetching what is missing in as few requests as the fetcher allows.
func (b *lazyBlob) ensureExact(ctx context.Context, ranges []Extent, cause Cause) error {
	return b.get(ctx, ranges, func(int) bool { return true }, cause)
}

// Limits of one request: bytes, so that one slow request does not hold up
// everything, and ranges, so that the Range header stays short.
const (
	maxRun       = 4 << 20
	maxReqRanges = 64
)

// pageRun is a run of adjacent pages, fetched as one range; c is done when
// they are stored.
type pageRun struct {
	first, last int
	c           *call
}

// request is what one (multi-range) request brings.
type request struct {
	runs  []pageRun
	bytes int64
}

// get fetches the missing pages of fill that nobody is fetching yet, and
// waits for those in flight that need says the caller needs.
func (b *lazyBlob) get(ctx context.Context, fill []Extent, need func(page int) bool, cause Cause) error {
	reqs, wait := b.claim(fill, need)
	if err := b.fetchRequests(ctx, reqs, cause); err != nil {
		return err
	}
	return waitCalls(ctx, wait)
}

// claim marks the pages of fill that it will fetch as in flight, grouped
// into requests, and returns those with the fetches in flight of needed
// pages to wait for.
func (b *lazyBlob) claim(fill []Extent, need func(page int) bool) (reqs []*request, wait []*call) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Neighbours are fetched only along with a needed page: a read whose
	// pages are all here or on their way costs no request.
	lacking := b.lacking(fill, need)
	var rb requestBuilder
	seen := map[*call]bool{}
	for _, e := range fill {
		if e.Length <= 0 {
			continue
		}
		first, last := b.pages(e.Offset, e.Length)
		for p := first; p <= last; p++ {
			if c, ok := b.inflight[p]; ok {
				if need(p) && !seen[c] {
					seen[c] = true
					wait = append(wait, c)
				}
				continue
			}
			if lacking && !b.cache.has(p) {
				b.inflight[p] = rb.add(p)
			}
		}
	}
	return rb.reqs, wait
}

// lacking reports whether a page that need says is needed is neither
// cached nor in flight. b.mu is held.
func (b *lazyBlob) lacking(fill []Extent, need func(page int) bool) bool {
	for _, e := range fill {
		if e.Length <= 0 {
			continue
		}
		first, last := b.pages(e.Offset, e.Length)
		for p := first; p <= last; p++ {
			if _, flying := b.inflight[p]; need(p) && !flying && !b.cache.has(p) {
				return true
			}
		}
	}
	return false
}

// requestBuilder groups pages, in ascending order, into runs and requests
// within the limits of one request.
type requestBuilder struct{ reqs []*request }

// add adds page p and returns the call that will bring it.
func (rb *requestBuilder) add(p int) *call {
	var r *request
	if k := len(rb.reqs); k > 0 {
		r = rb.reqs[k-1]
		lr := &r.runs[len(r.runs)-1]
		if lr.last == p-1 && r.bytes+pageSize <= maxRun {
			lr.last = p
			r.bytes += pageSize
			return lr.c
		}
		if r.bytes+pageSize > maxRun || len(r.runs) == maxReqRanges {
			r = nil
		}
	}
	if r == nil {
		r = &request{}
		rb.reqs = append(rb.reqs, r)
	}
	c := &call{done: make(chan struct{})}
	r.runs = append(r.runs, pageRun{p, p, c})
	r.bytes += pageSize
	return c
}

// fetchRequests runs the requests side by side and returns the first
// error, in request order.
func (b *lazyBlob) fetchRequests(ctx context.Context, reqs []*request, cause Cause) error {
	var wg sync.WaitGroup
	errs := make([]error, len(reqs))
	for k, r := range reqs {
		if k == len(reqs)-1 {
			errs[k] = b.fetchRuns(ctx, r.runs, cause) // the last one in this goroutine
			continue
		}
		wg.Go(func() { errs[k] = b.fetchRuns(ctx, r.runs, cause) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitCalls waits for fetches in flight, failing with the first that fails.
func waitCalls(ctx context.Context, wait []*call) error {
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

// fetchRuns fetches runs of pages, in one request when the fetcher can
// serve several ranges at once, and stores each run as soon as it has
// arrived, so that a reader waiting for it need not wait for the rest.
func (b *lazyBlob) fetchRuns(ctx context.Context, runs []pageRun, cause Cause) error {
	offs := make([]int64, len(runs))
	bufs := make([][]byte, len(runs))
	var total int64
	for i, r := range runs {
		off, end := b.cache.pageRange(r.first, r.last)
		offs[i], bufs[i] = off, make([]byte, end-off)
		total += end - off
	}
	if cause == CauseDemand && b.demand != nil {
		b.demand.Add(1)
		defer b.demand.Add(-1)
	}
	finished := make([]bool, len(runs))
	start := time.Now()
	var first time.Duration
	finish := func(i int, err error) {
		if !finished[i] {
			finished[i] = true
			if err == nil && first == 0 {
				first = time.Since(start)
			}
			b.finishRun(runs[i], bufs[i], err)
		}
	}
	attempts, err := b.fetchInto(ctx, offs, bufs, func(i int) { finish(i, nil) })
	if err != nil {
		err = fmt.Errorf("layer %d blob %s: %w", b.layer, b.digest, err)
	}
	for i := range runs {
		finish(i, err)
		if err == nil && runs[i].c.err != nil {
			err = runs[i].c.err // a store failed
		}
	}
	if len(b.obs) > 0 {
		ev := BlobFetch{Layer: b.layer, Digest: b.digest, Offset: offs[0], Length: total, Ranges: len(runs), Cause: cause,
			Start: start, Latency: time.Since(start), FirstRun: first, Attempts: attempts, Err: err}
		for _, o := range b.obs {
			o.BlobFetch(ev)
		}
	}
	return err
}

// fetchInto fills bufs with the blob's bytes at offs, in one request when
// the fetcher can, calling done(i) as each buffer is complete.
func (b *lazyBlob) fetchInto(ctx context.Context, offs []int64, bufs [][]byte, done func(int)) (attempts int, err error) {
	if rf, ok := b.fetch.(rangeFetcher); ok && len(offs) > 1 {
		return rf.FetchRanges(ctx, offs, bufs, done)
	}
	for i := range offs {
		a, err := b.fetch.Fetch(ctx, bufs[i], offs[i])
		attempts += a
		if err != nil {
			return attempts, err
		}
		done(i)
	}
	return attempts, nil
}

// finishRun stores a fetched run (unless the fetch failed) and releases
// the readers waiting for it.
func (b *lazyBlob) finishRun(r pageRun, buf []byte, err error) {
	if err == nil {
		err = b.cache.store(r.first, buf)
	}
	r.c.err = err
	b.mu.Lock()
	for p := r.first; p <= r.last; p++ {
		delete(b.inflight, p)
	}
	b.mu.Unlock()
	close(r.c.done)
}

// dropRange forgets the cached fetch units that hold blob bytes
// [start, end): bytes that failed a checksum came with a fetch that may have
// gone wrong elsewhere too.
func (b *lazyBlob) dropRange(start, end int64) error {
	u := b.cache.c.unit
	lo, hi := start/u*u, min((end+u-1)/u*u, b.size)
	first, last := b.pages(lo, hi-lo)
	return b.cache.drop(first, last)
}
