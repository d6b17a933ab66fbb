package prefetch

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/replay"
)

// Target is what the engine fetches through.
type Target interface {
	// Prefetch fetches a range as a demand read would, in whole fetch
	// units.
	Prefetch(ctx context.Context, layer int, off, n int64) error
	// PrefetchExact fetches exactly the given ranges, in as few requests
	// as the registry allows.
	PrefetchExact(ctx context.Context, layer int, ranges []backstore.Extent) error
	DemandInFlight() int
	BlobRanges(off, n int64) []backstore.BlobRange
}

// Outcome is what became of a unit.
type Outcome int

// Outcomes.
const (
	Pending Outcome = iota
	Hit             // fetched before the program asked
	Partial         // the program asked while it was being fetched
	Miss            // the program asked before the engine got to it
	Waste           // fetched, never asked for
	Skipped         // never fetched nor used (the engine stopped first)
	Failed          // the fetch failed
)

func (o Outcome) String() string {
	return [...]string{"pending", "hit", "partial", "miss", "waste", "skipped", "failed"}[o]
}

type unitState struct {
	started, done time.Time
	fetching      bool
	fetched       bool
	demanded      bool
	outcome       Outcome
}

// Option configures Start.
type Option func(*Engine)

// WithWorkers sets how many units are fetched at once (default 8).
func WithWorkers(n int) Option { return func(e *Engine) { e.workers = max(n, 1) } }

// WithBatch sets how many bytes of consecutive units of a layer one worker
// fetches together, as one multi-range request where the registry serves
// those (default 2 MiB). 0 fetches each unit by itself, in whole fetch
// units as a demand read would: the way overlaybd's own replay reads.
func WithBatch(n int64) Option { return func(e *Engine) { e.batch = max(n, 0) } }

// maxBatchUnits bounds the ranges of one batch, and so of one request.
const maxBatchUnits = 48

// WithPriority controls whether the engine holds back while demand reads
// fetch (default on; overlaybd's own replay has none).
func WithPriority(on bool) Option { return func(e *Engine) { e.priority = on } }

// WithFollow controls whether the cursor jumps to where the program is
// (default on).
func WithFollow(on bool) Option { return func(e *Engine) { e.follow = on } }

// WithLogger sets the logger for failed fetches (default: none).
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// Engine runs a plan.
type Engine struct {
	plan     *replay.Plan
	t        Target
	workers  int
	batch    int64
	priority bool
	follow   bool
	log      *slog.Logger

	mu       sync.Mutex
	cursor   int
	inflight int // batches being fetched
	states   []unitState
	byLyr    map[int][]int // unit indices per layer, by offset

	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
	start  time.Time
	end    time.Time
}

// Start starts fetching the plan's units. Register the engine as a
// backstore observer (it implements DeviceRead) so it sees demand.
func Start(ctx context.Context, plan *replay.Plan, t Target, opts ...Option) *Engine {
	e := &Engine{plan: plan, t: t, workers: 8, batch: 2 << 20, priority: true, follow: true,
		states: make([]unitState, len(plan.Units)), byLyr: map[int][]int{}, done: make(chan struct{}), start: time.Now()}
	for _, o := range opts {
		o(e)
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	for i, u := range plan.Units {
		e.byLyr[u.Layer] = append(e.byLyr[u.Layer], i)
	}
	for _, idx := range e.byLyr {
		sort.Slice(idx, func(a, b int) bool { return plan.Units[idx[a]].Offset < plan.Units[idx[b]].Offset })
	}
	ctx, e.cancel = context.WithCancel(ctx)
	for w := 0; w < e.workers; w++ {
		e.wg.Add(1)
		go e.work(ctx)
	}
	go func() {
		e.wg.Wait()
		e.mu.Lock()
		e.end = time.Now()
		e.mu.Unlock()
		close(e.done)
	}()
	return e
}

// next claims the next pending unit at or after the cursor (when none is
// left there, the ones the cursor jumped over, in order) and, when batching,
// the pending units of the same layer that follow it in the plan. wait says
// that units are left but the worker should hold off for now.
func (e *Engine) next() (batch []int, wait bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	claimable := func(i int) bool {
		s := &e.states[i]
		return !s.fetching && !s.fetched && !s.demanded && s.outcome != Failed
	}
	claim := func(i int) {
		s := &e.states[i]
		s.fetching, s.started = true, time.Now()
	}
	if e.batch > 0 && e.inflight > 0 {
		// Near the end, fewer batches at once: the last bytes then come
		// in the order the program needs them instead of all together
		// at the very end, each at a fraction of the link.
		var left int64
		for i := range e.states {
			if claimable(i) {
				left += e.plan.Units[i].Length
			}
		}
		if e.inflight >= min(e.workers, max(1, int((left+2*e.batch-1)/(2*e.batch)))) {
			return nil, left > 0
		}
	}
	first := -1
	for ; e.cursor < len(e.states); e.cursor++ {
		if claimable(e.cursor) {
			first = e.cursor
			e.cursor++
			break
		}
	}
	if first < 0 {
		for i := range e.states {
			if claimable(i) {
				first = i
				break
			}
		}
	}
	if first < 0 {
		return nil, false
	}
	e.inflight++
	claim(first)
	batch = []int{first}
	u := e.plan.Units[first]
	bytes := u.Length
	for j := first + 1; e.batch > 0 && j < len(e.states) && len(batch) < maxBatchUnits; j++ {
		if !claimable(j) {
			continue
		}
		v := e.plan.Units[j]
		if v.Layer != u.Layer || bytes+v.Length > e.batch {
			break
		}
		claim(j)
		batch = append(batch, j)
		bytes += v.Length
	}
	return batch, false
}

func (e *Engine) work(ctx context.Context) {
	defer e.wg.Done()
	for {
		if e.priority {
			// Demand goes first: wait while the program is fetching,
			// but not forever, or a busy program starves the engine.
			for i := 0; i < 20 && e.t.DemandInFlight() > 0 && ctx.Err() == nil; i++ {
				time.Sleep(500 * time.Microsecond)
			}
		}
		if ctx.Err() != nil {
			return
		}
		batch, wait := e.next()
		if wait {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if batch == nil {
			return
		}
		var err error
		if e.batch == 0 {
			u := e.plan.Units[batch[0]]
			err = e.t.Prefetch(ctx, u.Layer, u.Offset, u.Length)
		} else {
			ranges := make([]backstore.Extent, len(batch))
			for k, i := range batch {
				u := e.plan.Units[i]
				ranges[k] = backstore.Extent{Offset: u.Offset, Length: u.Length}
			}
			err = e.t.PrefetchExact(ctx, e.plan.Units[batch[0]].Layer, ranges)
		}
		e.mu.Lock()
		e.inflight--
		for _, i := range batch {
			s := &e.states[i]
			s.fetching, s.done = false, time.Now()
			if err != nil {
				s.outcome = Failed
			} else {
				s.fetched = true
			}
		}
		e.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			u := e.plan.Units[batch[0]]
			e.log.Debug("prefetch: batch failed", "layer", u.Layer, "off", u.Offset, "units", len(batch), "err", err)
		}
	}
}

// DeviceRead classifies the units a demand read touched and moves the
// cursor to where the program is.
func (e *Engine) DeviceRead(ev backstore.DeviceRead) {
	ranges := e.t.BlobRanges(ev.Offset, ev.Length)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range ranges {
		idx := e.byLyr[r.Layer]
		// First unit that ends after r.Start.
		k := sort.Search(len(idx), func(k int) bool { return e.plan.Units[idx[k]].End() > r.Start })
		for ; k < len(idx) && e.plan.Units[idx[k]].Offset < r.End; k++ {
			i := idx[k]
			s := &e.states[i]
			if s.demanded {
				continue
			}
			s.demanded = true
			switch {
			case s.fetched && s.done.Before(ev.Start):
				s.outcome = Hit
			case !s.started.IsZero() && s.started.Before(ev.Start):
				s.outcome = Partial
			default:
				s.outcome = Miss
			}
			if e.follow && i >= e.cursor {
				// The program is here: work ahead of it. Units jumped
				// over are fetched once the ones ahead are done.
				e.cursor = i + 1
			}
		}
	}
}

// BlobFetch is not needed.
func (e *Engine) BlobFetch(backstore.BlobFetch) {}

// Done is closed when every unit has been dealt with or the engine stopped.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Stop cancels fetches in flight and waits for the workers.
func (e *Engine) Stop() {
	e.cancel()
	<-e.done
}

// Report sums up the outcomes.
type Report struct {
	Units    int           `json:"units"`
	Bytes    int64         `json:"bytes"`
	Hit      int           `json:"hit"`
	Partial  int           `json:"partial"`
	Miss     int           `json:"miss"`
	Waste    int           `json:"waste"`
	Skipped  int           `json:"skipped"`
	Failed   int           `json:"failed"`
	Pending  int           `json:"pending"`
	HitBytes int64         `json:"hitBytes"`
	Wasted   int64         `json:"wastedBytes"`
	Took     time.Duration `json:"took"`
}

// Report returns the outcomes so far; units fetched and never demanded
// count as waste.
func (e *Engine) Report() Report {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := Report{Units: len(e.states), Bytes: e.plan.Bytes}
	if !e.end.IsZero() {
		r.Took = e.end.Sub(e.start)
	}
	for i, s := range e.states {
		o := s.outcome
		if o == Pending && s.fetched && !s.demanded {
			o = Waste
		}
		n := e.plan.Units[i].Length
		switch o {
		case Hit:
			r.Hit++
			r.HitBytes += n
		case Partial:
			r.Partial++
		case Miss:
			r.Miss++
		case Waste:
			r.Waste++
			r.Wasted += n
		case Failed:
			r.Failed++
		default:
			if s.fetching {
				r.Pending++
			} else {
				r.Skipped++
			}
		}
	}
	return r
}
