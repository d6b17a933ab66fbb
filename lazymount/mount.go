package lazymount

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/prefetch"
)

// Mount is an image's file system mounted read-only at a directory.
type Mount struct {
	bs      *backstore.Backstore
	dev     *device.Device
	eng     *prefetch.Engine // nil: no prefetch
	metrics *Metrics

	once   sync.Once
	err    error
	mu     sync.Mutex
	rep    prefetch.Report // final, once closed
	closed bool
}

var _ io.Closer = (*Mount)(nil)

// Start opens ref lazily and mounts its file system read-only at dir,
// prefetching along the image's trace (see WithTrace). Close tears it all
// down. Needs root.
func Start(ctx context.Context, ref, dir string, opts ...Option) (_ *Mount, err error) {
	c := newConfig(opts)
	// Whatever a crashed earlier mount left behind goes first.
	if n, err := device.Cleanup(ctx, device.WithStateDir(c.stateDir), device.WithLogger(c.log)); err != nil {
		c.log.Warn("cleaning up after earlier mounts", "err", err)
	} else if n > 0 {
		c.log.Info("cleaned up mounts left by processes that died", "count", n)
	}
	bsOpts := append([]backstore.Option{backstore.WithRefOptions(c.refOpts...), backstore.WithLogger(c.log)}, c.bsOpts...)
	if c.metrics != nil {
		bsOpts = append(bsOpts, backstore.WithObserver(c.metrics.observer()))
	}
	var early *earlyReplay
	if c.prefetches() {
		r, err := imageref.Parse(ref)
		if err != nil {
			return nil, err
		}
		early = newEarlyReplay(ctx, &c, r)
		bsOpts = append(bsOpts, early.options()...)
	}
	start := time.Now()
	bs, err := backstore.Open(ctx, ref, bsOpts...)
	if early != nil {
		early.opened(err == nil)
	}
	if err != nil {
		return nil, err
	}
	c.log.Debug("image opened", "ref", ref, "after", time.Since(start))
	m := &Mount{bs: bs, metrics: c.metrics}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	for _, f := range c.opened {
		f(bs)
	}
	if early != nil {
		if m.eng, err = early.wait(ctx); err != nil {
			return nil, err
		}
		if m.eng != nil && c.metrics != nil {
			c.metrics.add(m.eng)
		}
	}
	dopts := append([]device.Option{device.WithStateDir(c.stateDir), device.WithLogger(c.log)}, c.devOpts...)
	if m.dev, err = device.Mount(ctx, bs, dir, dopts...); err != nil {
		return nil, fmt.Errorf("mounting %s at %s: %w", ref, dir, err)
	}
	c.log.Debug("mounted", "ref", ref, "dir", dir, "after", time.Since(start))
	return m, nil
}

// Backstore is the open image.
func (m *Mount) Backstore() *backstore.Backstore { return m.bs }

// Device is the mounted device; nil until mounted.
func (m *Mount) Device() *device.Device { return m.dev }

// Prefetching reports whether a trace is being replayed.
func (m *Mount) Prefetching() bool { return m.eng != nil }

// Report is the prefetch's outcome: so far while mounted, final after
// Close (zero without prefetch).
func (m *Mount) Report() prefetch.Report {
	if m.eng == nil {
		return prefetch.Report{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return m.rep
	}
	return m.eng.Report()
}

// Close stops the prefetch, unmounts, detaches the loop device, stops FUSE
// and closes the image. It may be called more than once; Report has the
// prefetch's final outcome afterwards.
func (m *Mount) Close() error {
	m.once.Do(func() {
		if m.eng != nil {
			m.eng.Stop()
			m.mu.Lock()
			m.rep, m.closed = m.eng.Report(), true
			m.mu.Unlock()
			if m.metrics != nil {
				m.metrics.done(m.eng)
			}
		}
		if m.dev != nil {
			m.err = m.dev.Close()
		}
		if err := m.bs.Close(); m.err == nil {
			m.err = err
		}
	})
	return m.err
}
