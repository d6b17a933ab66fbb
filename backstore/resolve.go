package backstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

// TagTTL is how long a tag resolved through the registry is trusted from the
// cache: a warm start within it asks the registry nothing at all.
const TagTTL = 10 * time.Minute

// resolved is an image's manifest and config, as stored.
type resolved struct {
	digest   v1.Hash
	manifest []byte
	config   []byte
	local    bool // came from the cache, not the registry
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func (r *resolved) Digest() (v1.Hash, error)     { return r.digest, nil }
func (r *resolved) RawManifest() ([]byte, error) { return r.manifest, nil }
func (r *resolved) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytesReader(r.manifest))
}
func (r *resolved) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytesReader(r.config))
}

// image is what Open needs of an image.
type image interface {
	Digest() (v1.Hash, error)
	Manifest() (*v1.Manifest, error)
	RawManifest() ([]byte, error)
	ConfigFile() (*v1.ConfigFile, error)
}

type tagEntry struct {
	Digest   string    `json:"digest"`
	Resolved time.Time `json:"resolved"`
}

// metaDir holds cached manifests and configs (by digest) and tags.
func metaDir(cacheDir string) string { return filepath.Join(cacheDir, "meta") }

// manifestSeen is told an image's manifest as soon as it is known, before
// its config is fetched, so that what needs only the manifest (the trace
// lookup) need not wait for the config's round trip.
type manifestSeen func(digest v1.Hash, raw []byte, local bool)

// resolve finds the image's manifest and config: from the cache when the
// reference is a digest already seen or a tag resolved within TagTTL, else
// from the registry (or layout), storing what it learns. seen may be told
// the manifest more than once (once per attempt).
func resolve(ctx context.Context, r imageref.Ref, cfg config, seen manifestSeen) (image, error) {
	if r.Kind != imageref.KindRegistry {
		return imageref.Image(ctx, r, cfg.refOpts...)
	}
	dir := metaDir(cfg.cacheDir)
	if d, ok := cachedDigest(dir, r); ok {
		if img, err := loadResolved(dir, d); err == nil {
			img.local = true
			seen(img.digest, img.manifest, true)
			return img, nil
		}
	}
	var res *resolved
	var err error
	pause := cfg.retry.backoff
	for attempt := 1; ; attempt++ {
		res, err = fetchResolved(ctx, r, cfg, seen)
		if err == nil || attempt == cfg.retry.attempts || ctx.Err() != nil || isPermanent(err) {
			break
		}
		cfg.log.Debug("backstore: resolving the image failed, retrying", "ref", r, "attempt", attempt, "err", err)
		time.Sleep(pause)
		pause = min(2*pause, 2*time.Second)
	}
	if err != nil {
		return nil, err
	}
	if err := storeResolved(dir, r, res); err != nil {
		cfg.log.Warn("backstore: cannot cache the manifest; the next start will ask the registry again", "err", err)
	}
	return res, nil
}

// fetchResolved reads the manifest and config from the registry; the
// config is checked against its digest.
func fetchResolved(ctx context.Context, r imageref.Ref, cfg config, seen manifestSeen) (*resolved, error) {
	img, err := imageref.Image(ctx, r, cfg.refOpts...)
	if err != nil {
		return nil, err
	}
	res := &resolved{}
	if res.digest, err = img.Digest(); err != nil {
		return nil, err
	}
	if res.manifest, err = img.RawManifest(); err != nil {
		return nil, err
	}
	seen(res.digest, res.manifest, false)
	if res.config, err = img.RawConfigFile(); err != nil {
		return nil, err
	}
	mf, err := v1.ParseManifest(bytesReader(res.manifest))
	if err != nil {
		return nil, err
	}
	if h, _, err := v1.SHA256(bytesReader(res.config)); err != nil || h != mf.Config.Digest {
		return nil, fmt.Errorf("config of %s does not match its digest", r)
	}
	return res, nil
}

// isPermanent reports registry answers that asking again will not change.
func isPermanent(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
			return true
		}
	}
	return false
}

func cachedDigest(dir string, r imageref.Ref) (v1.Hash, bool) {
	if d, ok := r.Name.(interface{ DigestStr() string }); ok {
		h, err := v1.NewHash(d.DigestStr())
		return h, err == nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "tags.json"))
	if err != nil {
		return v1.Hash{}, false
	}
	tags := map[string]tagEntry{}
	if json.Unmarshal(b, &tags) != nil {
		return v1.Hash{}, false
	}
	e, ok := tags[r.Name.String()]
	if !ok || time.Since(e.Resolved) > TagTTL {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(e.Digest)
	return h, err == nil
}

func loadResolved(dir string, d v1.Hash) (*resolved, error) {
	m, err := os.ReadFile(filepath.Join(dir, d.Hex+".manifest"))
	if err != nil {
		return nil, err
	}
	if h, _, err := v1.SHA256(bytesReader(m)); err != nil || h != d {
		return nil, errors.New("cached manifest does not match its digest")
	}
	mf, err := v1.ParseManifest(bytesReader(m))
	if err != nil {
		return nil, err
	}
	c, err := os.ReadFile(filepath.Join(dir, mf.Config.Digest.Hex+".config"))
	if err != nil {
		return nil, err
	}
	if h, _, err := v1.SHA256(bytesReader(c)); err != nil || h != mf.Config.Digest {
		return nil, errors.New("cached config does not match its digest")
	}
	return &resolved{digest: d, manifest: m, config: c}, nil
}

func storeResolved(dir string, r imageref.Ref, res *resolved) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	mf, err := v1.ParseManifest(bytesReader(res.manifest))
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, res.digest.Hex+".manifest"), res.manifest); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, mf.Config.Digest.Hex+".config"), res.config); err != nil {
		return err
	}
	if _, ok := r.Name.(interface{ DigestStr() string }); ok {
		return nil
	}
	path := filepath.Join(dir, "tags.json")
	tags := map[string]tagEntry{}
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &tags)
	}
	tags[r.Name.String()] = tagEntry{Digest: res.digest.String(), Resolved: time.Now()}
	b, err := json.Marshal(tags)
	if err != nil {
		return err
	}
	return writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// fetchers returns a fetcher for every layer blob.
func (b *Backstore) fetchers(life context.Context, r imageref.Ref, cfg config) ([]fetcher, error) {
	out := make([]fetcher, len(b.manifest.Layers))
	if r.Kind == imageref.KindLayout {
		for i, d := range b.manifest.Layers {
			f, err := imageref.OpenLayoutBlob(r.Dir, d)
			if err != nil {
				return nil, fmt.Errorf("backstore: %s: layer %d: %w", r, i, err)
			}
			b.closers = append(b.closers, f)
			out[i] = &fileFetcher{f: f}
		}
		return out, nil
	}
	reg := &registryClient{ctx: life, ref: r, opts: cfg.refOpts}
	for i, d := range b.manifest.Layers {
		out[i] = &httpFetcher{reg: reg, digest: d.Digest, size: d.Size, retry: cfg.retry, log: cfg.log}
	}
	return out, nil
}

// registryClient is the HTTP client for a repository's blobs, made on first
// use: making it asks the registry how to authenticate, and a start whose
// bytes are all cached must ask the registry nothing.
type registryClient struct {
	ctx  context.Context
	ref  imageref.Ref
	opts []imageref.Option

	multi atomic.Int32 // multiUnknown, multiYes or multiNo

	once   sync.Once
	client *http.Client
	base   string // scheme://host/v2/repo/blobs/
	err    error
}

func (c *registryClient) get() (*http.Client, string, error) {
	c.once.Do(func() {
		t, repo, scheme, err := imageref.BlobTransport(c.ctx, c.ref, c.opts...)
		if err != nil {
			c.err = err
			return
		}
		c.client = &http.Client{Transport: t}
		c.base = fmt.Sprintf("%s://%s/v2/%s/blobs/", scheme, repo.RegistryStr(), repo.RepositoryStr())
	})
	return c.client, c.base, c.err
}
