package imageref

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultRequestTimeout bounds how long a registry may take to start
// answering a request (manifests, pings, tokens, referrers, blobs): a
// registry that accepts connections and never answers must not hold a
// command for minutes. Reading a body that has started is not bounded
// here; blob fetches have idle timeouts of their own.
const DefaultRequestTimeout = 30 * time.Second

// WithRequestTimeout sets how long a registry may take to start answering a
// request (default DefaultRequestTimeout; 0 or less: no bound).
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// roundTripper is the transport registry requests go through: answers must
// start within the timeout, and HTTPS is not tried on loopback registries,
// which dejavu reaches over plain HTTP.
func (o options) roundTripper() http.RoundTripper {
	var rt http.RoundTripper = loopbackPlain{o.transport}
	if o.timeout > 0 {
		rt = headerDeadline{next: rt, d: o.timeout}
	}
	return rt
}

// errLoopbackTLS answers an HTTPS request to a loopback registry at once.
// go-containerregistry pings such registries over HTTPS and HTTP side by
// side; without this, a registry that answers neither holds the HTTPS
// attempt for its whole timeout too.
var errLoopbackTLS = errors.New("imageref: loopback registries are reached over plain HTTP")

type loopbackPlain struct{ next http.RoundTripper }

func (l loopbackPlain) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" && isLoopback(req.URL.Host) {
		return nil, errLoopbackTLS
	}
	return l.next.RoundTrip(req)
}

// headerDeadline fails a request whose answer has not started within d.
type headerDeadline struct {
	next http.RoundTripper
	d    time.Duration
}

func (h headerDeadline) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	timer := time.AfterFunc(h.d, cancel)
	resp, err := h.next.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		if cerr := req.Context().Err(); cerr != nil {
			return nil, cerr // the caller gave up first: say so, not the timeout
		}
		return nil, fmt.Errorf("imageref: %s %s: no answer within %s", req.Method, req.URL.Redacted(), h.d)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases the request's context with its body.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
