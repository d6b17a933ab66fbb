package prefetch_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/replay"
)

// stillOpening is a real backstore that says it is still opening until
// told otherwise, and counts the prefetch requests in flight at once: the
// opening phase cannot be held open long enough through a real Open.
type stillOpening struct {
	*backstore.Backstore
	open                     atomic.Bool
	inflight, whileOpen, max atomic.Int32
}

func (s *stillOpening) Opening() bool { return s.open.Load() }

func (s *stillOpening) PrefetchExact(ctx context.Context, layer int, ranges []backstore.Extent) error {
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	peak := &s.max
	if s.open.Load() {
		peak = &s.whileOpen
	}
	for {
		if p := peak.Load(); n <= p || peak.CompareAndSwap(p, n) {
			break
		}
	}
	return s.Backstore.PrefetchExact(ctx, layer, ranges)
}

// While the image opens, the engine keeps one batch in flight, so that the
// index reads the mount waits on share the link with one request; once
// opened, as many as it has workers.
func TestOneBatchWhileOpening(t *testing.T) {
	fx := setup(t)
	tr := fx.record(t)
	bs, _ := fx.run(t, nil)
	defer bs.Close()
	target := &stillOpening{Backstore: bs}
	target.open.Store(true)
	plan, err := replay.New(tr, bs.Manifest().Layers, bs.Held, replay.Options{MaxUnit: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	eng := prefetch.Start(context.Background(), plan, target, prefetch.WithWorkers(4), prefetch.WithBatch(64<<10))
	time.Sleep(150 * time.Millisecond)
	target.open.Store(false)
	<-eng.Done()
	if rep := eng.Report(); rep.Failed > 0 {
		t.Fatalf("report %+v", rep)
	}
	if got := target.whileOpen.Load(); got != 1 {
		t.Errorf("%d batches in flight at once while opening, want 1", got)
	}
	if got := target.max.Load(); got < 2 {
		t.Errorf("at most %d batches in flight at once after opening, want up to 4", got)
	}
}
