package lazymount

import (
	"log/slog"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/replay"
	"github.com/dejavu-project/dejavu/trace"
)

// Prefetch defaults: a few requests of a couple of MiB each keep a link of
// tens of ms and ~100 Mbit/s busy, while the ranges the program needs next
// are never queued far behind others.
const (
	DefaultPrefetchWorkers = 4
	DefaultPrefetchBatch   = 2 << 20
	// A registry slow to list referrers, or a trace slow to decode or
	// plan, must not hold up the start.
	DefaultTraceWait = 3 * time.Second
)

// Option configures Start.
type Option func(*config)

type config struct {
	bsOpts   []backstore.Option
	refOpts  []imageref.Option
	devOpts  []device.Option
	stateDir string
	source   trace.SourceSpec
	workload string
	policy   replay.Policy
	workers  int
	batch    int64
	wait     time.Duration
	opened   []func(*backstore.Backstore)
	metrics  *Metrics
	log      *slog.Logger
}

func newConfig(opts []Option) config {
	c := config{stateDir: device.DefaultStateDir, policy: replay.PolicyDejavu,
		workers: DefaultPrefetchWorkers, batch: DefaultPrefetchBatch, wait: DefaultTraceWait, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	// One session for the image's and the trace's requests: the trace
	// lookup and the layers' first ranges then skip the registry's
	// authentication ping, a round trip each before the first prefetched
	// byte. First, so that a caller's own session wins.
	c.refOpts = append([]imageref.Option{imageref.WithSession(imageref.NewSession())}, c.refOpts...)
	return c
}

// prefetches reports whether there is a trace to look for.
func (c *config) prefetches() bool { return c.source.Kind != trace.SourceNone }

// WithBackstoreOptions passes options to backstore.Open (cache, retries,
// observers).
func WithBackstoreOptions(o ...backstore.Option) Option {
	return func(c *config) { c.bsOpts = append(c.bsOpts, o...) }
}

// WithRefOptions sets how registries are reached, for the image and its
// trace alike.
func WithRefOptions(o ...imageref.Option) Option {
	return func(c *config) { c.refOpts = append(c.refOpts, o...) }
}

// WithDeviceOptions passes options to device.Mount.
func WithDeviceOptions(o ...device.Option) Option {
	return func(c *config) { c.devOpts = append(c.devOpts, o...) }
}

// WithStateDir is where mount state is kept, for unmount and for cleaning
// up after a process that died (default device.DefaultStateDir).
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithTrace chooses the trace to prefetch (trace.ParseSource reads it as
// users write it): the one attached to the image (the zero SourceSpec, the
// default), none, a trace file, or a trace artifact attached to the image,
// by digest. A trace that cannot be had or read costs the mount its
// prefetch (a warning), not the mount.
func WithTrace(source trace.SourceSpec) Option { return func(c *config) { c.source = source } }

// WithWorkload chooses among several attached traces (with the trace
// source auto).
func WithWorkload(name string) Option { return func(c *config) { c.workload = name } }

// WithPolicy chooses the replay policy (default replay.PolicyDejavu).
func WithPolicy(p replay.Policy) Option { return func(c *config) { c.policy = p } }

// WithPrefetchWorkers sets the prefetch requests kept in flight.
func WithPrefetchWorkers(n int) Option { return func(c *config) { c.workers = n } }

// WithPrefetchBatch sets the bytes of trace ranges one request asks for.
func WithPrefetchBatch(n int64) Option { return func(c *config) { c.batch = n } }

// WithTraceWait bounds how long, after the image opened, the mount waits
// for its trace to be fetched, decoded and planned (default
// DefaultTraceWait); past it the mount goes on without prefetch, logs the
// trace as refused and stops the lookup. The snapshotter's mounts take the
// same option.
func WithTraceWait(d time.Duration) Option { return func(c *config) { c.wait = d } }

// WithOpened adds a function called with the open image before its file
// system is mounted (to attach recorders); each one given is called, in
// order.
func WithOpened(f func(*backstore.Backstore)) Option {
	return func(c *config) { c.opened = append(c.opened, f) }
}

// WithMetrics reports the mount's fetches, device reads and prefetch
// outcomes to m.
func WithMetrics(m *Metrics) Option { return func(c *config) { c.metrics = m } }

// WithLogger sets the logger, which the backstore, the prefetch and the
// device log through too (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }
