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
	if len(offs) == 1 || f.reg.multi.Load() == multiNo {
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

// each fetches the ranges with the given indexes one request after another.
func (f *httpFetcher) each(ctx context.Context, offs []int64, bufs [][]byte, which []int, done func(int)) (int, error) {
	attempts := 0
	for _, i := range which {
		n, err := f.Fetch(ctx, bufs[i], offs[i])
		attempts += n
		if err != nil {
			return attempts, err
		}
		done(i)
	}
	return attempts, nil
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
	lo, hi := offs[0], int64(0)
	for i, off := range offs {
		if i > 0 {
			spec.WriteByte(',')
		}
		end := off + int64(len(bufs[i]))
		spec.WriteString(strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(end-1, 10))
		lo, hi = min(lo, off), max(hi, end)
	}
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
		return fmt.Errorf("GET %s (%d ranges): %s", url, len(offs), resp.Status)
	}
	idle.Reset(f.retry.idleTimeout)
	body := &idleReader{r: resp.Body, t: idle, d: f.retry.idleTimeout}
	fill := filler{offs: offs, bufs: bufs, lo: lo, hi: hi, done: done, reported: make([]bool, len(offs))}
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

// filler copies the parts of a response into the buffers they overlap and
// checks that every requested byte came.
type filler struct {
	offs     []int64
	bufs     [][]byte
	lo, hi   int64
	got      [][2]int64 // parts received, sorted by start
	done     func(int)
	reported []bool
}

func (f *filler) part(r io.Reader, a, b int64) error {
	// Parts outside the asked span would make us buffer what we never
	// asked for.
	if a < f.lo || b >= f.hi {
		return badMultipart{fmt.Errorf("part %d-%d outside the requested %d-%d", a, b, f.lo, f.hi-1)}
	}
	p := make([]byte, b-a+1)
	if _, err := io.ReadFull(r, p); err != nil {
		return fmt.Errorf("read part %d-%d: %w", a, b, err)
	}
	for i, off := range f.offs {
		end := off + int64(len(f.bufs[i]))
		if s, e := max(off, a), min(end, b+1); s < e {
			copy(f.bufs[i][s-off:e-off], p[s-a:e-a])
		}
	}
	f.got = append(f.got, [2]int64{a, b + 1})
	slices.SortFunc(f.got, func(x, y [2]int64) int { return cmp.Compare(x[0], y[0]) })
	for i := range f.offs {
		if !f.reported[i] && f.covered(i) == f.offs[i]+int64(len(f.bufs[i])) {
			f.reported[i] = true
			f.done(i)
		}
	}
	return nil
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
