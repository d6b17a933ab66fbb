package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// journalName is the file under the data directory that records manifest
// writes, one JSON object a line, replayed in order at start.
const journalName = "manifests.journal"

// maxManifest bounds a manifest body, as registries commonly do (4 MiB).
const maxManifest = 4 << 20

type op struct {
	Op          string `json:"op"` // "put" or "delete"
	Repo        string `json:"repo"`
	Ref         string `json:"ref"`
	ContentType string `json:"contentType,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// Option configures New.
type Option func(*config)

type config struct {
	logger *slog.Logger
}

// WithLogger sets where requests are logged (at debug level).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Handler is the registry's HTTP handler.
type Handler struct {
	inner   http.Handler
	blobs   string // where the disk blob handler keeps blobs
	log     *slog.Logger
	mu      sync.Mutex // serialises journal appends
	journal *os.File
}

// New opens (or creates) a registry whose data lives in dir: blobs under
// dir/blobs, manifest writes in a journal replayed now.
func New(dir string, opts ...Option) (*Handler, error) {
	cfg := config{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	blobs := filepath.Join(dir, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	store, err := newDiskBlobs(blobs)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	inner := ggcr.New(
		ggcr.WithReferrersSupport(true),
		ggcr.WithBlobHandler(store),
		ggcr.Logger(log.New(io.Discard, "", 0)),
	)
	h := &Handler{inner: inner, log: cfg.logger, blobs: blobs}
	path := filepath.Join(dir, journalName)
	if err := h.replay(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	h.journal = f
	return h, nil
}

// Close closes the journal.
func (h *Handler) Close() error { return h.journal.Close() }

func (h *Handler) replay(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 2*maxManifest)
	n := 0
	for sc.Scan() {
		n++
		var o op
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			// A line cut short by a crash is the last one: stop there.
			h.log.Warn("registry: journal line unreadable, ignoring the rest", "line", n, "err", err)
			break
		}
		url := "/v2/" + o.Repo + "/manifests/" + o.Ref
		method := http.MethodPut
		if o.Op == "delete" {
			method = http.MethodDelete
		}
		req := httptest.NewRequest(method, url, bytes.NewReader(o.Body))
		if o.ContentType != "" {
			req.Header.Set("Content-Type", o.ContentType)
		}
		rec := httptest.NewRecorder()
		h.inner.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			h.log.Warn("registry: journal entry not replayed", "line", n, "op", o.Op, "repo", o.Repo, "ref", o.Ref, "status", rec.Code)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("registry: read journal: %w", err)
	}
	h.log.Debug("registry: journal replayed", "entries", n)
	return nil
}

// manifestPath splits /v2/<repo>/manifests/<ref>.
func manifestPath(p string) (repo, ref string, ok bool) {
	if !strings.HasPrefix(p, "/v2/") {
		return "", "", false
	}
	i := strings.LastIndex(p, "/manifests/")
	if i < len("/v2/") {
		return "", "", false
	}
	return p[len("/v2/"):i], p[i+len("/manifests/"):], true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// ServeHTTP serves the registry API and journals manifest writes that the
// registry accepted.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.serveBlob(w, r) {
		return
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	repo, ref, isManifest := manifestPath(r.URL.Path)
	var body []byte
	if isManifest && r.Method == http.MethodPut {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
		if err != nil {
			http.Error(w, "read manifest: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(b) > maxManifest {
			http.Error(w, "manifest too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := validManifest(r.Header.Get("Content-Type"), b); err != nil {
			registryError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
			return
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	h.inner.ServeHTTP(rec, r)
	h.log.Debug("registry", "method", r.Method, "path", r.URL.Path, "range", r.Header.Get("Range"), "status", rec.status, "took", time.Since(start))
	if !isManifest || rec.status >= 300 {
		return
	}
	var o op
	switch r.Method {
	case http.MethodPut:
		o = op{Op: "put", Repo: repo, Ref: ref, ContentType: r.Header.Get("Content-Type"), Body: body}
	case http.MethodDelete:
		o = op{Op: "delete", Repo: repo, Ref: ref}
	default:
		return
	}
	if err := h.record(o); err != nil {
		h.log.Error("registry: manifest accepted but not journaled; it will be lost at restart", "repo", repo, "ref", ref, "err", err)
	}
}

func (h *Handler) record(o op) error {
	line, err := json.Marshal(o)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.journal.Write(append(line, '\n')); err != nil {
		return err
	}
	return h.journal.Sync()
}

// Server is a running registry.
type Server struct {
	Addr string // host:port it listens on
	srv  *http.Server
	h    *Handler
	done chan error
}

// Start serves a registry with data in dir on addr ("127.0.0.1:0" picks a
// free port). Stop it with Close.
func Start(addr, dir string, opts ...Option) (*Server, error) {
	h, err := New(dir, opts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	s := &Server{Addr: ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}, h: h, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Wait blocks until the server stops.
func (s *Server) Wait() error {
	err := <-s.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server, letting requests in flight finish for up to a
// second before it closes every connection.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var err error
	if s.srv.Shutdown(ctx) != nil {
		// Connections opened but never used count as busy for a while;
		// nothing is lost by closing them.
		err = s.srv.Close()
	}
	return errors.Join(err, s.h.Close())
}

var blobPath = regexp.MustCompile(`^/v2/.+/blobs/sha256:([0-9a-f]{64})$`)

// serveBlob answers blob reads straight from the blob file. The inner
// registry answers a range by reading and discarding everything before it,
// which makes every range request near the end of a large blob read the
// whole blob; a lazy reader makes many such requests.
func (h *Handler) serveBlob(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	m := blobPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return false
	}
	f, err := os.Open(filepath.Join(h.blobs, "sha256", m[1]))
	if err != nil {
		return false // unknown here: the inner registry answers
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	w.Header().Set("Docker-Content-Digest", "sha256:"+m[1])
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", fi.ModTime(), f)
	h.log.Debug("registry", "method", r.Method, "path", r.URL.Path, "range", r.Header.Get("Range"))
	return true
}

// registryError answers as the distribution spec says errors are answered.
func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
