package imageref

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Session shares authenticated pull transports between the registry
// requests of one job, such as a start: the manifest, the layers' ranges
// and the trace lookup. Without one, each of them pings the registry to
// learn how it authenticates and asks for its own token, a round trip or
// two before its first request; with one, a repository costs that once.
// A session is for pulling only: requests that push must not be given one.
// It is safe for concurrent use.
type Session struct {
	mu    sync.Mutex
	repos map[string]*sessionRepo
}

type sessionRepo struct {
	once sync.Once
	t    http.RoundTripper
	err  error
}

// NewSession returns an empty session.
func NewSession() *Session { return &Session{repos: map[string]*sessionRepo{}} }

// WithSession makes registry requests share the session's transports.
func WithSession(s *Session) Option { return func(o *options) { o.session = s } }

// pullTransport returns the repository's authenticated transport, made at
// the first call (with its ping) under the caller's options.
func (s *Session) pullTransport(ctx context.Context, repo name.Repository, o options) (http.RoundTripper, error) {
	key := repo.Scheme() + "://" + repo.Name()
	s.mu.Lock()
	e, ok := s.repos[key]
	if !ok {
		e = &sessionRepo{}
		s.repos[key] = e
	}
	s.mu.Unlock()
	e.once.Do(func() { e.t, e.err = newPullTransport(ctx, repo, o) })
	if e.err != nil {
		// A failed ping is not kept: the next caller tries again.
		s.mu.Lock()
		if s.repos[key] == e {
			delete(s.repos, key)
		}
		s.mu.Unlock()
	}
	return e.t, e.err
}

// newPullTransport pings the registry and returns a transport that
// authenticates pulls from repo as the registry asks.
func newPullTransport(ctx context.Context, repo name.Repository, o options) (http.RoundTripper, error) {
	auth, err := o.keychain.Resolve(repo)
	if err != nil {
		return nil, fmt.Errorf("imageref: %s: credentials: %w", repo, err)
	}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, o.roundTripper(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("imageref: %s: %w", repo, err)
	}
	return t, nil
}
