package imageref

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Option changes how references are resolved and registries reached.
type Option func(*options)

type options struct {
	insecure    bool
	platform    v1.Platform
	onePlatform bool
	keychain    authn.Keychain
	transport   http.RoundTripper
	timeout     time.Duration
	session     *Session
}

func makeOptions(opts []Option) options {
	o := options{
		platform:  DefaultPlatform(),
		keychain:  authn.DefaultKeychain,
		transport: remote.DefaultTransport,
		timeout:   DefaultRequestTimeout,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// DefaultPlatform is the platform picked from an index when WithPlatform is
// not given: Linux on this machine's architecture. The OS is fixed because
// overlaybd images are Linux images whatever machine handles them.
func DefaultPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// WithInsecure allows plain HTTP to every registry, not only to loopback
// ones.
func WithInsecure(insecure bool) Option {
	return func(o *options) { o.insecure = insecure }
}

// WithPlatform selects the image taken from an index by Image. Fields left
// empty match anything.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) { o.platform = p }
}

// WithKeychain sets where registry credentials come from; the default is
// authn.DefaultKeychain (the Docker config file and its helpers).
func WithKeychain(kc authn.Keychain) Option {
	return func(o *options) {
		if kc != nil {
			o.keychain = kc
		}
	}
}

// WithTransport sets the HTTP transport for registry requests, for example
// one that shapes or counts traffic.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) {
		if t != nil {
			o.transport = t
		}
	}
}

// Remote returns what go-containerregistry's remote package needs to reach a
// registry reference under opts: the name (made insecure if asked) and the
// options carrying ctx, credentials, transport and platform. Packages that
// talk to registries themselves (the referrers API, for one) use it so that
// they honour the same flags as everything else.
func Remote(ctx context.Context, r Ref, opts ...Option) (name.Reference, []remote.Option, error) {
	if r.Kind != KindRegistry {
		return nil, nil, fmt.Errorf("imageref: %s: not a registry reference", r)
	}
	if err := r.check(); err != nil {
		return nil, nil, err
	}
	o := makeOptions(opts)
	ref, err := o.reference(r)
	if err != nil {
		return nil, nil, err
	}
	ropts, err := o.remote(ctx, ref.Context())
	if err != nil {
		return nil, nil, err
	}
	return ref, ropts, nil
}

// reference applies WithInsecure to a registry reference. Parse already made
// loopback registries insecure.
func (o options) reference(r Ref) (name.Reference, error) {
	if !o.insecure {
		return r.Name, nil
	}
	ref, err := name.ParseReference(r.Name.String(), name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("imageref: %s: %w", r, err)
	}
	return ref, nil
}

// remote returns the options for go-containerregistry's remote package
// to reach repo. With a session, requests go through its authenticated
// transport (which go-containerregistry then uses as it is, without
// another ping).
func (o options) remote(ctx context.Context, repo name.Repository) ([]remote.Option, error) {
	t := o.roundTripper()
	if o.session != nil {
		var err error
		if t, err = o.session.pullTransport(ctx, repo, o); err != nil {
			return nil, err
		}
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithTransport(t),
		remote.WithPlatform(o.platform),
	}, nil
}

// BlobTransport returns an HTTP transport authenticated to pull from r's
// repository (credentials from the keychain, bearer tokens fetched as the
// registry asks), the repository, and the URL scheme to reach it with, for
// callers that read blobs by range themselves.
func BlobTransport(ctx context.Context, r Ref, opts ...Option) (http.RoundTripper, name.Repository, string, error) {
	ref, _, err := Remote(ctx, r, opts...)
	if err != nil {
		return nil, name.Repository{}, "", err
	}
	o := makeOptions(opts)
	repo := ref.Context()
	var t http.RoundTripper
	if o.session != nil {
		t, err = o.session.pullTransport(ctx, repo, o)
	} else {
		t, err = newPullTransport(ctx, repo, o)
	}
	if err != nil {
		return nil, repo, "", fmt.Errorf("imageref: %s: %w", r, err)
	}
	return t, repo, repo.Registry.Scheme(), nil
}
