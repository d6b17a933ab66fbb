package backstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fetcher reads byte ranges of one blob from where it is stored.
type fetcher interface {
	// Fetch fills p with the blob's bytes at off. It returns the number of
	// attempts it made.
	Fetch(ctx context.Context, p []byte, off int64) (attempts int, err error)
}

// retryPolicy bounds how a fetch is retried.
type retryPolicy struct {
	attempts    int           // tries in all
	idleTimeout time.Duration // abort an attempt that receives nothing for this long
	backoff     time.Duration // first pause between tries, doubled each time
}

func defaultRetry() retryPolicy {
	return retryPolicy{attempts: 6, idleTimeout: 10 * time.Second, backoff: 50 * time.Millisecond}
}

// httpFetcher reads a registry blob with closed Range requests.
type httpFetcher struct {
	reg    *registryClient
	digest v1.Hash
	size   int64
	retry  retryPolicy
	log    *slog.Logger
}

// errPermanent marks failures that another attempt will not fix.
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

func (f *httpFetcher) Fetch(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > f.size {
		return 0, fmt.Errorf("fetch %d+%d: outside the blob of %d bytes", off, len(p), f.size)
	}
	client, url, err := f.url()
	if err != nil {
		return 0, err
	}
	n, err := f.retrying(ctx, func() error { return f.once(ctx, client, url, p, off) })
	if err != nil {
		return n, fmt.Errorf("fetch %d+%d: %w", off, len(p), err)
	}
	return n, nil
}

func (f *httpFetcher) url() (*http.Client, string, error) {
	client, base, err := f.reg.get()
	if err != nil {
		return nil, "", err
	}
	return client, base + f.digest.String(), nil
}

// retrying runs one attempt after another, with jittered exponential
// backoff, until one succeeds, the error is permanent or the tries run out.
func (f *httpFetcher) retrying(ctx context.Context, once func() error) (int, error) {
	var err error
	pause := f.retry.backoff
	for attempt := 1; attempt <= f.retry.attempts; attempt++ {
		err = once()
		if err == nil {
			return attempt, nil
		}
		var perm errPermanent
		if ctx.Err() != nil || errors.As(err, &perm) {
			return attempt, err
		}
		if attempt == f.retry.attempts {
			break
		}
		f.log.Debug("backstore: fetch failed, retrying", "blob", f.digest, "attempt", attempt, "err", err)
		// Jitter keeps many readers from retrying in step.
		d := pause/2 + rand.N(pause)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return attempt, ctx.Err()
		}
		pause = min(2*pause, 2*time.Second)
	}
	return f.retry.attempts, fmt.Errorf("after %d attempts: %w", f.retry.attempts, err)
}

func (f *httpFetcher) once(ctx context.Context, client *http.Client, url string, p []byte, off int64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return errPermanent{err}
	}
	end := off + int64(len(p)) - 1
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, end))
	idle := time.AfterFunc(f.retry.idleTimeout, func() { cancel(errStalled) })
	defer idle.Stop()
	resp, err := client.Do(req)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, errStalled) {
			return errStalled
		}
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := checkContentRange(resp.Header.Get("Content-Range"), off, end, f.size); err != nil {
			return err
		}
	case http.StatusOK:
		// A server that ignores Range sends the whole blob: skip to off.
		idle.Reset(f.retry.idleTimeout)
		if _, err := io.CopyN(io.Discard, &idleReader{r: resp.Body, t: idle, d: f.retry.idleTimeout}, off); err != nil {
			return stallOr(ctx, err)
		}
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestedRangeNotSatisfiable:
		return errPermanent{fmt.Errorf("GET %s: %s", url, resp.Status)}
	default:
		return fmt.Errorf("GET %s (range %d-%d): %s", url, off, end, resp.Status)
	}
	idle.Reset(f.retry.idleTimeout)
	if _, err := io.ReadFull(&idleReader{r: resp.Body, t: idle, d: f.retry.idleTimeout}, p); err != nil {
		return stallOr(ctx, fmt.Errorf("read body of range %d-%d: %w", off, end, err))
	}
	return nil
}

var errStalled = errors.New("registry stalled: no bytes received within the idle timeout")

func stallOr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); errors.Is(c, errStalled) {
		return errStalled
	}
	return err
}

// idleReader pushes back an idle deadline whenever bytes arrive.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.t.Reset(i.d)
	}
	return n, err
}

// checkContentRange verifies "bytes a-b/total" against what was asked.
func checkContentRange(v string, off, end, size int64) error {
	a, b, err := parseContentRange(v, size)
	if err != nil {
		return err
	}
	if a != off || b != end {
		return fmt.Errorf("Content-Range %q does not match the requested %d-%d", v, off, end)
	}
	return nil
}

// parseContentRange parses "bytes a-b/total" (total may be "*") of a blob
// of the given size.
func parseContentRange(v string, size int64) (int64, int64, error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	rng, total, _ := strings.Cut(rest, "/")
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	ai, err1 := strconv.ParseInt(a, 10, 64)
	bi, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || ai < 0 || bi < ai || bi >= size {
		return 0, 0, fmt.Errorf("bad Content-Range %q for a blob of %d bytes", v, size)
	}
	if total != "*" {
		if t, err := strconv.ParseInt(total, 10, 64); err != nil || t != size {
			return 0, 0, fmt.Errorf("Content-Range %q: blob size is not %d", v, size)
		}
	}
	return ai, bi, nil
}

// fileFetcher reads a blob from a local file (an OCI layout's blob).
type fileFetcher struct {
	f *os.File
}

func (f *fileFetcher) Fetch(_ context.Context, p []byte, off int64) (int, error) {
	_, err := f.f.ReadAt(p, off)
	return 1, err
}
