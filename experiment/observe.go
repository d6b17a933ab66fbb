package experiment

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/record"
	"github.com/dejavu-project/dejavu/reports"
	"github.com/dejavu-project/dejavu/trace"
)

// startObserver watches one start: its registry requests, the bytes the
// program read, and the blob ranges those reads map to (what any start
// must fetch).
type startObserver struct {
	tl      timeline
	reads   atomic.Int64
	capture *record.Capture
}

// newStartObserver watches a start that began at start.
func newStartObserver(start time.Time) *startObserver {
	return &startObserver{capture: record.NewCapture(start)}
}

// mountOptions feed a mount's events to the observer.
func (o *startObserver) mountOptions() []lazymount.Option {
	return append(o.capture.MountOptions(), lazymount.WithBackstoreOptions(backstore.WithObserver(o)))
}

func (o *startObserver) DeviceRead(ev backstore.DeviceRead) { o.reads.Add(ev.Length) }

func (o *startObserver) BlobFetch(ev backstore.BlobFetch) { o.tl.BlobFetch(ev) }

// result is the start as measured: took from its beginning to ready.
func (o *startObserver) result(mode reports.Mode, start time.Time, took time.Duration, proxy *netshape.Proxy) reports.Start {
	s := proxy.Stats()
	tl := append(o.tl.since(start), registryRequests(proxy.Requests(), start)...)
	t := o.capture.Trace("", nil, "")
	r := reports.Start{Mode: mode, Timeline: tl, Seconds: took.Seconds(), Requests: s.Requests, Fetched: s.Bytes,
		ReadBytes: o.reads.Load(), NeededBytes: t.Bytes()}
	if mode == reports.ModeWarm {
		r.Need = needCurve(t)
	}
	return r
}

// needCurve is when a start first read how many blob bytes: a warm start's
// is the program's own pace, which the need limit is made of.
func needCurve(t *trace.Trace) []reports.NeedPoint {
	at := make([]float64, len(t.Records))
	length := make([]int64, len(t.Records))
	for i, r := range t.Records {
		at[i], length[i] = r.First.Seconds(), r.Length
	}
	return reports.NeedCurve(at, length)
}

// timeline keeps a start's blob fetches.
type timeline struct {
	mu      sync.Mutex
	fetches []backstore.BlobFetch
}

func (t *timeline) BlobFetch(ev backstore.BlobFetch) {
	t.mu.Lock()
	t.fetches = append(t.fetches, ev)
	t.mu.Unlock()
}

// since returns the fetches relative to the start's beginning.
func (t *timeline) since(start time.Time) []reports.Fetch {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]reports.Fetch, 0, len(t.fetches))
	for _, f := range t.fetches {
		out = append(out, reports.Fetch{At: f.Start.Sub(start).Seconds(), Took: f.Latency.Seconds(), First: f.FirstRun.Seconds(), Cause: f.Cause.String(),
			Bytes: f.Length, Ranges: max(f.Ranges, 1)})
	}
	return out
}

// registryRequests are the requests of a start that were not for blob
// ranges (the backstore reports those): manifests, referrers, configs and
// traces, the round trips before the first prefetched byte.
func registryRequests(reqs []netshape.Request, start time.Time) []reports.Fetch {
	var out []reports.Fetch
	for _, r := range reqs {
		if r.BlobRange() || r.Start.Before(start) {
			continue
		}
		out = append(out, reports.Fetch{At: r.Start.Sub(start).Seconds(), Took: r.Duration.Seconds(), Cause: reports.CauseRegistry,
			Bytes: r.Bytes, Ranges: 1, What: r.Method + " " + shortPath(r.Path)})
	}
	return out
}

// shortPath keeps what a registry path says about a request: the last two
// elements (manifests/TAG, blobs/DIGEST, referrers/DIGEST), digests cut.
func shortPath(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	last := parts[len(parts)-1]
	if strings.HasPrefix(last, "sha256:") && len(last) > 19 {
		parts[len(parts)-1] = last[:19]
	}
	return strings.Join(parts, "/")
}
