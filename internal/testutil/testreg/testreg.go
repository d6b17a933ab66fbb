package testreg

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/internal/registry"
)

// Registry is a running registry.
type Registry struct {
	Addr string // host:port, on loopback (so clients use plain HTTP)
}

// Ref is the reference of repoTag (such as "app:v1") in r.
func (r *Registry) Ref(repoTag string) string { return r.Addr + "/" + repoTag }

// Option configures Start.
type Option func(*config)

type config struct {
	ggcr           bool
	counter        *Counter
	stallReferrers bool
}

// WithGGCR serves go-containerregistry's plain registry (in memory, with the
// referrers API) instead of the embedded one.
func WithGGCR() Option { return func(c *config) { c.ggcr = true } }

// WithCounter counts every request the registry answers in c.
func WithCounter(c *Counter) Option { return func(cfg *config) { cfg.counter = c } }

// WithStalledReferrers makes the registry never answer a referrers request
// (the request is held until the client gives up or the test ends): a
// trace lookup that never ends. Everything else is answered.
func WithStalledReferrers() Option { return func(c *config) { c.stallReferrers = true } }

// stallReferrers holds referrers requests until their client gives up.
func stallReferrers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") {
			<-r.Context().Done()
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Start starts a registry on a free loopback port; it stops when the test
// ends.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	var h http.Handler
	if cfg.ggcr {
		h = ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))
	} else {
		rh, err := registry.New(t.TempDir())
		if err != nil {
			t.Fatalf("testreg: %v", err)
		}
		t.Cleanup(func() { rh.Close() })
		h = rh
	}
	if cfg.stallReferrers {
		h = stallReferrers(h)
	}
	return &Registry{Addr: serve(t, cfg.counter.wrap(h))}
}

// serve serves h on a free loopback port until the test ends. Unlike
// httptest's server it does not wait at the end for a request that a
// client left hanging: it gives requests a second, then cuts them.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testreg: %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	})
	return ln.Addr().String()
}

// Proxy forwards to the registry at upstream (host:port), counting the
// requests in c: a second address for the same images, so that only the
// requests of whoever uses it are counted.
func Proxy(t testing.TB, upstream string, c *Counter) string {
	t.Helper()
	up, err := url.Parse("http://" + upstream)
	if err != nil {
		t.Fatalf("testreg: upstream %q: %v", upstream, err)
	}
	return serve(t, c.wrap(httputil.NewSingleHostReverseProxy(up)))
}

// Counter counts requests: all of them, and blob GETs with and without a
// Range header (of every blob, or only of the one given to Blob). A nil
// Counter counts nothing.
type Counter struct {
	requests, blobGets, whole, ranged atomic.Int64
	uploads, blobHeads                atomic.Int64
	blob                              atomic.Pointer[string]
}

// Blob restricts the whole and ranged counts to the blob with digest d.
func (c *Counter) Blob(d string) { c.blob.Store(&d) }

// Requests is how many requests were answered.
func (c *Counter) Requests() int64 { return c.requests.Load() }

// BlobGets is how many GETs of any blob were answered.
func (c *Counter) BlobGets() int64 { return c.blobGets.Load() }

// Whole is how many GETs asked for a whole (counted) blob.
func (c *Counter) Whole() int64 { return c.whole.Load() }

// Ranged is how many GETs asked for ranges of a (counted) blob.
func (c *Counter) Ranged() int64 { return c.ranged.Load() }

// Uploads is how many blob uploads were started (POSTs to blobs/uploads/),
// what a client that found a blob already there does not do.
func (c *Counter) Uploads() int64 { return c.uploads.Load() }

// BlobHeads is how many HEADs of blobs were answered: how a client asks
// whether a blob is there before it uploads it.
func (c *Counter) BlobHeads() int64 { return c.blobHeads.Load() }

// Reset sets every count to zero.
func (c *Counter) Reset() {
	for _, n := range []*atomic.Int64{&c.requests, &c.blobGets, &c.whole, &c.ranged, &c.uploads, &c.blobHeads} {
		n.Store(0)
	}
}

func (c *Counter) wrap(h http.Handler) http.Handler {
	if c == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.count(r)
		h.ServeHTTP(w, r)
	})
}

func (c *Counter) count(r *http.Request) {
	c.requests.Add(1)
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") {
		c.uploads.Add(1)
	}
	i := strings.LastIndex(r.URL.Path, "/blobs/")
	if r.Method == http.MethodHead && i >= 0 {
		c.blobHeads.Add(1)
	}
	if r.Method != http.MethodGet || i < 0 {
		return
	}
	c.blobGets.Add(1)
	if d := c.blob.Load(); d != nil && r.URL.Path[i+len("/blobs/"):] != *d {
		return
	}
	if r.Header.Get("Range") == "" {
		c.whole.Add(1)
	} else {
		c.ranged.Add(1)
	}
}

// Layer makes c count the GETs of the (one) layer blob of the image at ref,
// and returns its digest.
func (c *Counter) Layer(t testing.TB, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest of %s: %v, %+v", ref, err, m)
	}
	d := m.Layers[0].Digest.String()
	c.Blob(d)
	return d
}

// Silent starts a listener that accepts connections and never answers, as
// a registry whose process hangs does, and returns its host:port.
func Silent(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// RawManifest is a manifest pushed byte for byte, whatever it says (an OCI
// image manifest by media type), for tests of what readers do with it.
type RawManifest []byte

// RawManifest returns the bytes.
func (m RawManifest) RawManifest() ([]byte, error) { return m, nil }

// MediaType says it is an OCI image manifest.
func (m RawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
