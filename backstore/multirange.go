package backstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rangeFetcher is a fetcher that can fill several ranges of a blob with one
// request. A start's bytes are hundreds of small scattered ranges; fetched
// one request each they cost hundreds of round trips, and joined into
// contiguous spans they drag along the bytes between them.
type rangeFetcher interface {
	// FetchRanges fills bufs[i] with the blob's bytes at offs[i] and calls
	// done(i) as soon as that buffer is complete, before the others. The
	// ranges must not overlap. It returns the number of attempts made.
	FetchRanges(ctx context.Context, offs []int64, bufs [][]byte, done func(i int)) (attempts int, err error)
}

// Whether a registry answers a Range header of several ranges with a
// multipart/byteranges body (RFC 9110, 14.6). Registries that serve blobs
// themselves mostly do; blob stores behind a redirect often do not. The
// first answer decides for the rest of the backstore's life.
const (
	multiUnknown int32 = iota
	multiYes
	multiNo
)

// errNoMultiRange says the registry answered a multi-range request with
// something else: the whole blob, or one range that does not cover them.
var errNoMultiRange = errors.New("registry does not serve multi-range requests")

// badMultipart is a multipart body that does not hold what was asked. It
// may be damage in transit, so it is retried; if it persists, the ranges
// are fetched one by one.
type badMultipart struct{ err error }

func (e badMultipart) Error() string { return "multipart body: " + e.err.Error() }
func (e badMultipart) Unwrap() error { return e.err }

func (f *httpFetcher) FetchRanges(ctx context.Context, offs []int64, bufs [][]byte, done func(int)) (int, error) {
	if len(offs) != len(bufs) {
		return 0, fmt.Errorf("fetch ranges: %d offsets, %d buffers", len(offs), len(bufs))
	}
	for i, off := range offs {
		if off < 0 || len(bufs[i]) == 0 || off+int64(len(bufs[i])) > f.size {
			return 0, fmt.Errorf("fetch %d+%d: outside the blob of %d bytes", off, len(bufs[i]), f.size)
		}
	}
	if done == nil {
		done = func(int) {}
	}
	pending := make([]int, len(offs))
	for i := range pending {
		pending[i] = i
	}
	if len(spansOf(offs, bufs, pending)) == 1 || f.reg.multi.Load() == multiNo {
		return f.each(ctx, offs, bufs, pending, done)
	}
	client, url, err := f.url()
	if err != nil {
		return 0, err
	}
	// Each attempt asks only for what earlier ones did not complete.
	n, err := f.retrying(ctx, func() error {
		po, pb := make([]int64, len(pending)), make([][]byte, len(pending))
		for j, i := range pending {
			po[j], pb[j] = offs[i], bufs[i]
		}
		complete := make([]bool, len(pending))
		err := f.onceMulti(ctx, client, url, po, pb, func(j int) { complete[j] = true; done(pending[j]) })
		left := pending[:0]
		for j, i := range pending {
			if !complete[j] {
				left = append(left, i)
			}
		}
		pending = left
		if errors.Is(err, errNoMultiRange) {
			return errPermanent{err}
		}
		return err
	})
	if errors.Is(err, errNoMultiRange) {
		if f.reg.multi.CompareAndSwap(multiUnknown, multiNo) {
			f.log.Info("backstore: the registry does not serve several ranges in one request; fetching them one by one", "url", url)
		}
		m, err := f.each(ctx, offs, bufs, pending, done)
		return n + m, err
	}
	if bad := (badMultipart{}); errors.As(err, &bad) && ctx.Err() == nil {
		f.log.Warn("backstore: multi-range answers keep being malformed; fetching these ranges one by one", "url", url, "err", err)
		m, err := f.each(ctx, offs, bufs, pending, done)
		return n + m, err
	}
	if err != nil {
		return n, fmt.Errorf("fetch %d ranges from %d: %w", len(offs), offs[0], err)
	}
	f.reg.multi.CompareAndSwap(multiUnknown, multiYes)
	return n, nil
}

// span is a range of the blob made of adjacent requested buffers, asked
// for as one range.
type span struct {
	off, end int64
	members  []int // indexes of its buffers, in blob order
}

// spansOf joins the buffers with the given indexes that touch each other
// into spans, in blob order.
func spansOf(offs []int64, bufs [][]byte, which []int) []span {
	idx := slices.Clone(which)
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(offs[a], offs[b]) })
	var out []span
	for _, i := range idx {
		end := offs[i] + int64(len(bufs[i]))
		if k := len(out) - 1; k >= 0 && out[k].end == offs[i] {
			out[k].end = end
			out[k].members = append(out[k].members, i)
			continue
		}
		out = append(out, span{off: offs[i], end: end, members: []int{i}})
	}
	return out
}

// each fetches the buffers with the given indexes one span after another,
// one range request each.
func (f *httpFetcher) each(ctx context.Context, offs []int64, bufs [][]byte, which []int, done func(int)) (int, error) {
	client, url, err := f.url()
	if err != nil {
		return 0, err
	}
	attempts := 0
	for _, sp := range spansOf(offs, bufs, which) {
		mo, mb := make([]int64, len(sp.members)), make([][]byte, len(sp.members))
		for j, i := range sp.members {
			mo[j], mb[j] = offs[i], bufs[i]
		}
		fill := newFiller(mo, mb, func(j int) { done(sp.members[j]) })
		n, err := f.retrying(ctx, func() error { return f.onceSpan(ctx, client, url, sp, fill) })
		attempts += n
		if err != nil {
			return attempts, fmt.Errorf("fetch %d+%d: %w", sp.off, sp.end-sp.off, err)
		}
	}
	return attempts, nil
}

// onceSpan makes one request for a span, filling (and reporting) its
// buffers as the bytes arrive.
func (f *httpFetcher) onceSpan(ctx context.Context, client *http.Client, url string, sp span, fill *filler) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return errPermanent{err}
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", sp.off, sp.end-1))
	idle := time.AfterFunc(f.retry.idleTimeout, func() { cancel(errStalled) })
	defer idle.Stop()
	resp, err := client.Do(req)
	if err != nil {
		return stallOr(ctx, err)
	}
	defer resp.Body.Close()
	body := &idleReader{r: resp.Body, t: idle, d: f.retry.idleTimeout}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := checkContentRange(resp.Header.Get("Content-Range"), sp.off, sp.end-1, f.size); err != nil {
			return err
		}
	case http.StatusOK:
		// A server that ignores Range sends the whole blob: skip to off.
		idle.Reset(f.retry.idleTimeout)
		if _, err := io.CopyN(io.Discard, body, sp.off); err != nil {
			return stallOr(ctx, err)
		}
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestedRangeNotSatisfiable:
		return errPermanent{fmt.Errorf("GET %s: %s", url, resp.Status)}
	default:
		return fmt.Errorf("GET %s (range %d-%d): %s", url, sp.off, sp.end-1, resp.Status)
	}
	idle.Reset(f.retry.idleTimeout)
	if err := fill.part(body, sp.off, sp.end-1); err != nil {
		return stallOr(ctx, err)
	}
	return fill.complete()
}

// onceMulti makes one multi-range request.
func (f *httpFetcher) onceMulti(ctx context.Context, client *http.Client, url string, offs []int64, bufs [][]byte, done func(int)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return errPermanent{err}
	}
	var spec strings.Builder
	spec.WriteString("bytes=")
	all := make([]int, len(offs))
	for i := range all {
		all[i] = i
	}
	spans := spansOf(offs, bufs, all)
	for k, sp := range spans {
		if k > 0 {
			spec.WriteByte(',')
		}
		spec.WriteString(strconv.FormatInt(sp.off, 10) + "-" + strconv.FormatInt(sp.end-1, 10))
	}
	lo, hi := spans[0].off, spans[len(spans)-1].end
	req.Header.Set("Range", spec.String())
	idle := time.AfterFunc(f.retry.idleTimeout, func() { cancel(errStalled) })
	defer idle.Stop()
	resp, err := client.Do(req)
	if err != nil {
		return stallOr(ctx, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		// The whole blob: not worth reading for a few ranges.
		return errNoMultiRange
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestedRangeNotSatisfiable:
		return errPermanent{fmt.Errorf("GET %s: %s", url, resp.Status)}
	default:
		return fmt.Errorf("GET %s (%d ranges): %s", url, len(spans), resp.Status)
	}
	idle.Reset(f.retry.idleTimeout)
	body := &idleReader{r: resp.Body, t: idle, d: f.retry.idleTimeout}
	fill := newFiller(offs, bufs, done)
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		// One range: enough if the server joined them into one span.
		a, b, err := parseContentRange(resp.Header.Get("Content-Range"), f.size)
		if err != nil || a > lo || b+1 < hi {
			return errNoMultiRange
		}
		if err := fill.part(body, a, b); err != nil {
			return stallOr(ctx, err)
		}
		return fill.complete()
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if c := context.Cause(ctx); errors.Is(c, errStalled) {
				return errStalled
			}
			return badMultipart{err}
		}
		a, b, err := parseContentRange(part.Header.Get("Content-Range"), f.size)
		if err != nil {
			return badMultipart{err}
		}
		if err := fill.part(part, a, b); err != nil {
			return stallOr(ctx, err)
		}
	}
	if err := fill.complete(); err != nil {
		return badMultipart{err}
	}
	return nil
}

// filler copies the parts of a response into the buffers they overlap as
// the bytes arrive, reports each buffer as soon as it is complete, and
// checks that every requested byte came.
type filler struct {
	offs     []int64
	bufs     [][]byte
	lo, hi   int64
	got      [][2]int64 // bytes received, as sorted disjoint spans
	done     func(int)
	reported []bool
	chunk    []byte
}

func newFiller(offs []int64, bufs [][]byte, done func(int)) *filler {
	f := &filler{offs: offs, bufs: bufs, lo: offs[0], done: done, reported: make([]bool, len(offs))}
	for i, off := range offs {
		f.lo, f.hi = min(f.lo, off), max(f.hi, off+int64(len(bufs[i])))
	}
	return f
}

// fillChunk is how much of a part is read before its bytes are handed
// out: a reader waiting for a piece gets it within one chunk of its
// arrival.
const fillChunk = 64 << 10

func (f *filler) part(r io.Reader, a, b int64) error {
	// Parts outside the asked span would make us buffer what we never
	// asked for.
	if a < f.lo || b >= f.hi {
		return badMultipart{fmt.Errorf("part %d-%d outside the requested %d-%d", a, b, f.lo, f.hi-1)}
	}
	if f.chunk == nil {
		f.chunk = make([]byte, fillChunk)
	}
	for at := a; at <= b; {
		p := f.chunk[:min(int64(len(f.chunk)), b-at+1)]
		if _, err := io.ReadFull(r, p); err != nil {
			return fmt.Errorf("read part %d-%d: %w", a, b, err)
		}
		f.fill(at, p)
		at += int64(len(p))
	}
	return nil
}

// fill takes the blob's bytes p at offset at.
func (f *filler) fill(at int64, p []byte) {
	end := at + int64(len(p))
	for i, off := range f.offs {
		if s, e := max(off, at), min(off+int64(len(f.bufs[i])), end); s < e {
			copy(f.bufs[i][s-off:e-off], p[s-at:e-at])
		}
	}
	f.got = addSpan(f.got, at, end)
	for i := range f.offs {
		if !f.reported[i] && f.covered(i) >= f.offs[i]+int64(len(f.bufs[i])) {
			f.reported[i] = true
			f.done(i)
		}
	}
}

// addSpan adds [a, b) to sorted disjoint spans, joining what it touches.
func addSpan(got [][2]int64, a, b int64) [][2]int64 {
	out := got[:0:0]
	for _, g := range got {
		switch {
		case g[1] < a || g[0] > b:
			out = append(out, g)
		default:
			a, b = min(a, g[0]), max(b, g[1])
		}
	}
	out = append(out, [2]int64{a, b})
	slices.SortFunc(out, func(x, y [2]int64) int { return cmp.Compare(x[0], y[0]) })
	return out
}

// covered returns how far from its start buffer i is filled.
func (f *filler) covered(i int) int64 {
	at := f.offs[i]
	for _, g := range f.got {
		if g[0] <= at && g[1] > at {
			at = g[1]
		}
	}
	return at
}

func (f *filler) complete() error {
	for i, off := range f.offs {
		if end, at := off+int64(len(f.bufs[i])), f.covered(i); at < end {
			return fmt.Errorf("response lacks bytes %d-%d", at, end-1)
		}
	}
	return nil
}

// FetchRanges reads the ranges from the file.
func (f *fileFetcher) FetchRanges(_ context.Context, offs []int64, bufs [][]byte, done func(int)) (int, error) {
	for i, off := range offs {
		if _, err := f.f.ReadAt(bufs[i], off); err != nil {
			return 1, err
		}
		if done != nil {
			done(i)
		}
	}
	return 1, nil
}
