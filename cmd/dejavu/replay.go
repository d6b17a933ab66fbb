package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/replay"
	"github.com/dejavu-project/dejavu/trace"
)

// Prefetch defaults: a few requests of a couple of MiB each keep a link of
// tens of ms and ~100 Mbit/s busy, while the ranges the program needs next
// are never queued far behind others.
const (
	defaultPrefetchWorkers = 4
	defaultPrefetchBatch   = 2 << 20
	// A registry slow to list referrers must not hold up the start.
	defaultTraceWait = 3 * time.Second
)

// replayFlags choose the trace a mount prefetches and how.
type replayFlags struct {
	trace    string
	workload string
	policy   string
	workers  int
	batch    int64
	wait     time.Duration
}

func (f *replayFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.trace, "trace", "auto", "trace to prefetch: auto (the one attached to the image), none, a FILE, or sha256:DIGEST of an attached trace")
	fl.StringVar(&f.workload, "workload", "", "with --trace auto: which workload's trace, when several are attached")
	fl.StringVar(&f.policy, "replay-policy", "dejavu", "dejavu, or fifo (overlaybd's own: recorded order, no joining, 16 workers, no priority)")
	fl.IntVar(&f.workers, "prefetch-workers", defaultPrefetchWorkers, "requests the prefetcher keeps in flight")
	fl.DurationVar(&f.wait, "trace-wait", defaultTraceWait, "start without prefetch when finding the trace takes longer than this after the image opened")
	fl.Int64Var(&f.batch, "prefetch-batch", defaultPrefetchBatch, "bytes of trace ranges one prefetch request asks for (several ranges in one request where the registry allows)")
}

// prefetcher starts replaying a trace on an opened image; stop ends it.
type prefetcher struct {
	eng  *prefetch.Engine
	plan *replay.Plan
}

// load finds the trace to replay, or nil when there is none to use, for
// the image manifest that ref resolved to (local: from the cache).
func (f *replayFlags) load(ctx context.Context, ref imageref.Ref, subject v1.Descriptor, local bool, rf registryFlags) (*trace.Trace, error) {
	switch {
	case f.trace == "none" || f.trace == "":
		return nil, nil
	case f.trace == "auto":
		if local {
			// Started here before: asking the registry for traces would
			// make a warm start wait on it; the cache holds what it needs.
			return nil, nil
		}
		ropts, err := rf.options()
		if err != nil {
			return nil, err
		}
		t, d, err := trace.Pull(ctx, ref, trace.WithSubject(subject), trace.WithWorkload(f.workload), trace.WithPullRefOptions(ropts...))
		if err != nil {
			slog.Info("no trace to prefetch", "reason", err)
			return nil, nil
		}
		slog.Info("prefetching with the attached trace", "digest", d, "workload", t.Workload)
		return t, nil
	case strings.HasPrefix(f.trace, "sha256:"):
		ropts, err := rf.options()
		if err != nil {
			return nil, err
		}
		t, _, err := trace.Pull(ctx, ref, trace.WithSubject(subject), trace.WithDigest(f.trace), trace.WithPullRefOptions(ropts...))
		return t, err
	default:
		if _, err := os.Stat(f.trace); err != nil {
			return nil, fmt.Errorf("--trace %s: %w", f.trace, err)
		}
		return readTraceFile(f.trace)
	}
}

// start plans and starts the replay; slot is the observer registered when
// the image was opened.
func (f *replayFlags) start(ctx context.Context, bs *backstore.Backstore, slot *backstore.Slot, t *trace.Trace) (*prefetcher, error) {
	var layers []v1.Hash
	for _, l := range bs.Manifest().Layers {
		layers = append(layers, l.Digest)
	}
	opts := replay.Options{Policy: replay.Policy(f.policy)}
	engOpts := []prefetch.Option{prefetch.WithWorkers(f.workers), prefetch.WithBatch(f.batch)}
	switch opts.Policy {
	case replay.PolicyDejavu:
	case replay.PolicyFIFO:
		engOpts = []prefetch.Option{prefetch.WithWorkers(16), prefetch.WithBatch(0), prefetch.WithPriority(false), prefetch.WithFollow(false)}
	default:
		return nil, fmt.Errorf("--replay-policy %q: want dejavu or fifo", f.policy)
	}
	plan, err := replay.New(t, layers, bs.Held, opts)
	if err != nil {
		return nil, err
	}
	if plan.Dropped > 0 {
		slog.Info("trace records of layers this image lacks were dropped", "records", plan.Dropped, "bytes", plan.DroppedBytes)
	}
	eng := prefetch.Start(ctx, plan, bs, engOpts...)
	slot.Set(eng)
	return &prefetcher{eng: eng, plan: plan}, nil
}

// earlyReplay starts the replay as early as the image allows: the trace is
// looked up as soon as the manifest is resolved, and the prefetch starts as
// soon as both the trace and the layers' fetchers are there, while the
// backstore still reads the layers' indexes.
type earlyReplay struct {
	ctx       context.Context
	flags     *replayFlags
	ref       imageref.Ref
	rf        registryFlags
	slot      *backstore.Slot
	fetchable chan *backstore.Backstore
	done      chan struct{} // closed when Open has returned
	ok        bool          // and it succeeded
	started   atomic.Bool   // the manifest was resolved and run started
	result    chan earlyResult

	mu        sync.Mutex
	abandoned bool // wait gave up: run must not start the engine
}

type earlyResult struct {
	pf  *prefetcher
	err error
}

func newEarlyReplay(ctx context.Context, flags *replayFlags, ref imageref.Ref, rf registryFlags) *earlyReplay {
	return &earlyReplay{ctx: ctx, flags: flags, ref: ref, rf: rf, slot: &backstore.Slot{},
		fetchable: make(chan *backstore.Backstore, 1), done: make(chan struct{}), result: make(chan earlyResult, 1)}
}

// options are the backstore options that drive it.
func (e *earlyReplay) options() []backstore.Option {
	return []backstore.Option{
		backstore.WithObserver(e.slot),
		backstore.WithResolved(func(d v1.Descriptor, local bool) {
			e.started.Store(true)
			go e.run(d, local)
		}),
		backstore.WithFetchable(func(bs *backstore.Backstore) { e.fetchable <- bs }),
	}
}

func (e *earlyReplay) run(subject v1.Descriptor, local bool) {
	t, err := e.flags.load(e.ctx, e.ref, subject, local, e.rf)
	if err != nil || t == nil {
		e.result <- earlyResult{err: err}
		return
	}
	var bs *backstore.Backstore
	select {
	case bs = <-e.fetchable:
	case <-e.done:
		select {
		case bs = <-e.fetchable:
		default:
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if bs == nil || !e.openedOK() || e.abandoned {
		e.result <- earlyResult{}
		return
	}
	pf, err := e.flags.start(e.ctx, bs, e.slot, t)
	e.result <- earlyResult{pf, err}
}

// openedOK reports whether Open has not failed (yet).
func (e *earlyReplay) openedOK() bool {
	select {
	case <-e.done:
		return e.ok
	default:
		return true
	}
}

// opened says that Open returned; a failed Open stops what was started.
func (e *earlyReplay) opened(ok bool) {
	e.ok = ok
	close(e.done)
	if !ok && e.started.Load() {
		go func() {
			if r := <-e.result; r.pf != nil {
				r.pf.eng.Stop()
			}
		}()
	}
}

// wait returns the running replay, or nil when there is no trace to use.
func (e *earlyReplay) wait(ctx context.Context) (*prefetcher, error) {
	if !e.started.Load() {
		return nil, nil
	}
	wait := e.flags.wait
	if wait <= 0 {
		wait = defaultTraceWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-e.result:
		return r.pf, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		e.mu.Lock()
		defer e.mu.Unlock()
		select {
		case r := <-e.result: // it came after all
			return r.pf, r.err
		default:
		}
		e.abandoned = true
		slog.Warn("the image's trace was not found in time; starting without prefetch", "waited", wait)
		return nil, nil
	}
}
