package imageref_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

// A session makes the manifest reads, the blob transport and the
// referrers-style remote calls of one job share one authentication ping;
// without one, each pays its own.
func TestSessionPingsOnce(t *testing.T) {
	var pings atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pings.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/app:v1"
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r.Name, img); err != nil {
		t.Fatal(err)
	}
	job := func(opts ...imageref.Option) int64 {
		pings.Store(0)
		ctx := context.Background()
		for range 2 {
			if _, err := imageref.Image(ctx, r, opts...); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, _, err := imageref.BlobTransport(ctx, r, opts...); err != nil {
			t.Fatal(err)
		}
		n, ropts, err := imageref.Remote(ctx, r, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Head(n, ropts...); err != nil {
			t.Fatal(err)
		}
		return pings.Load()
	}
	if n := job(imageref.WithSession(imageref.NewSession())); n != 1 {
		t.Errorf("with a session: %d pings, want 1", n)
	}
	if n := job(); n < 4 {
		t.Errorf("without a session: %d pings; the test no longer tells the two apart", n)
	}
	// A session never pushes: a write through options carrying one still
	// authenticates for pushing itself, and succeeds.
	if err := imageref.WriteImage(context.Background(), r, img, imageref.WithSession(imageref.NewSession())); err != nil {
		t.Errorf("write with a session: %v", err)
	}
}
