package lazymount

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/replay"
	"github.com/dejavu-project/dejavu/trace"
)

// loadTrace finds the trace to replay, or nil when there is none to use,
// for the image manifest that ref resolved to (local: from the cache).
func (c *config) loadTrace(ctx context.Context, ref imageref.Ref, subject v1.Descriptor, local bool) (*trace.Trace, error) {
	pull := []trace.PullOption{trace.WithSubject(subject), trace.WithPullRefOptions(c.refOpts...)}
	switch c.source.Kind {
	case trace.SourceAuto:
		if local {
			// Started here before: asking the registry for traces would
			// make a warm start wait on it; the cache holds what it needs.
			return nil, nil
		}
		t, d, err := trace.Pull(ctx, ref, append(pull, trace.WithWorkload(c.workload))...)
		if errors.Is(err, trace.ErrRefused) {
			return nil, err // said as a refusal by run
		}
		if err != nil {
			c.log.Info("no trace to prefetch", "image", ref.String(), "reason", err)
			return nil, nil
		}
		c.log.Info("prefetching with the attached trace", "image", ref.String(), "digest", d, "workload", t.Workload)
		return t, nil
	case trace.SourceDigest:
		t, _, err := trace.Pull(ctx, ref, append(pull, trace.WithDigest(c.source.Digest))...)
		return t, err
	case trace.SourceFile:
		return trace.ReadFile(c.source.Path)
	}
	return nil, nil
}

// planReplay checks the trace against the image's layers and plans it.
func (c *config) planReplay(bs *backstore.Fetchable, t *trace.Trace) (*replay.Plan, replay.Engine, error) {
	how, err := c.policy.Engine(c.workers, c.batch)
	if err != nil {
		return nil, how, err
	}
	plan, err := replay.New(t, bs.Layers(), bs.Held, replay.Options{Policy: c.policy})
	if err != nil {
		return nil, how, err
	}
	if plan.Dropped > 0 {
		c.log.Info("trace records of layers this image lacks were dropped", "records", plan.Dropped, "bytes", plan.DroppedBytes)
	}
	return plan, how, nil
}

// startReplay starts the planned replay; slot is the observer registered
// when the image was opened.
func (c *config) startReplay(ctx context.Context, bs *backstore.Fetchable, slot *backstore.Slot, plan *replay.Plan, how replay.Engine) *prefetch.Engine {
	eng := prefetch.Start(ctx, plan, bs, prefetch.WithWorkers(how.Workers), prefetch.WithBatch(how.Batch),
		prefetch.WithPriority(how.Priority), prefetch.WithFollow(how.Follow), prefetch.WithLogger(c.log))
	slot.Set(eng)
	return eng
}

// earlyReplay starts the replay as early as the image allows: the trace is
// looked up as soon as the manifest is resolved, and the prefetch starts as
// soon as both the trace and the layers' fetchers are there, while the
// backstore still reads the layers' indexes. The trace wait covers all of
// it, fetching, decoding and planning: none of it holds the lock that wait
// takes when it gives up.
type earlyReplay struct {
	ctx       context.Context // the mount's: the engine runs in it
	lookup    context.Context // the trace's fetch: cancelled when wait gives up
	stop      context.CancelFunc
	c         *config
	ref       imageref.Ref
	slot      *backstore.Slot
	fetchable chan *backstore.Fetchable
	done      chan struct{} // closed when Open has returned
	ok        bool          // and it succeeded
	started   atomic.Bool   // the manifest was resolved and run started
	result    chan earlyResult

	mu        sync.Mutex
	abandoned bool // wait gave up: run must not start the engine
}

type earlyResult struct {
	eng *prefetch.Engine
	err error
}

func newEarlyReplay(ctx context.Context, c *config, ref imageref.Ref) *earlyReplay {
	lookup, stop := context.WithCancel(ctx)
	return &earlyReplay{ctx: ctx, lookup: lookup, stop: stop, c: c, ref: ref, slot: &backstore.Slot{},
		fetchable: make(chan *backstore.Fetchable, 1), done: make(chan struct{}), result: make(chan earlyResult, 1)}
}

// options are the backstore options that drive it.
func (e *earlyReplay) options() []backstore.Option {
	return []backstore.Option{
		backstore.WithObserver(e.slot),
		backstore.WithResolved(func(d v1.Descriptor, local bool) {
			e.started.Store(true)
			go e.run(d, local)
		}),
		backstore.WithFetchable(func(f *backstore.Fetchable) { e.fetchable <- f }),
	}
}

func (e *earlyReplay) run(subject v1.Descriptor, local bool) {
	defer e.stop()
	t, err := e.c.loadTrace(e.lookup, e.ref, subject, local)
	if err != nil {
		// Prefetch is best effort: a trace that cannot be had or read
		// costs the start its prefetch, never the start.
		e.refuse(err)
	}
	if t == nil {
		e.result <- earlyResult{}
		return
	}
	var bs *backstore.Fetchable
	select {
	case bs = <-e.fetchable:
	case <-e.done:
		select {
		case bs = <-e.fetchable:
		default:
		}
	}
	// Nothing to plan for when the image failed to open or the wait has
	// already given up (it cancels the lookup).
	if bs == nil || !e.openedOK() || e.lookup.Err() != nil {
		e.result <- earlyResult{}
		return
	}
	plan, how, err := e.c.planReplay(bs, t)
	if err != nil {
		e.refuse(err)
		e.result <- earlyResult{}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.openedOK() || e.abandoned {
		e.result <- earlyResult{}
		return
	}
	e.result <- earlyResult{eng: e.c.startReplay(e.ctx, bs, e.slot, plan, how)}
}

// refuse logs why the start goes on without prefetch.
func (e *earlyReplay) refuse(err error) {
	if e.lookup.Err() != nil && e.ctx.Err() == nil {
		return // wait gave up and said so
	}
	msg := "not prefetching"
	if errors.Is(err, trace.ErrRefused) {
		msg = "trace refused; starting without prefetch"
	}
	e.c.log.Warn(msg, "image", e.ref.String(), "trace", e.c.source.String(), "reason", err)
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
			if r := <-e.result; r.eng != nil {
				r.eng.Stop()
			}
		}()
	}
}

// wait returns the running replay, or nil when there is no trace to use.
func (e *earlyReplay) wait(ctx context.Context) (*prefetch.Engine, error) {
	if !e.started.Load() {
		return nil, nil
	}
	wait := e.c.wait
	if wait <= 0 {
		wait = DefaultTraceWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-e.result:
		return r.eng, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		e.mu.Lock()
		defer e.mu.Unlock()
		select {
		case r := <-e.result: // it came after all
			return r.eng, r.err
		default:
		}
		e.abandoned = true
		e.stop()
		e.c.log.Warn("trace refused: not fetched, decoded and planned within the trace wait; starting without prefetch",
			"image", e.ref.String(), "trace", e.c.source.String(), "waited", wait)
		return nil, nil
	}
}
