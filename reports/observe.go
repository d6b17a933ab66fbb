package reports

import (
	"sync/atomic"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/trace"
)

// startObserver watches one start: its registry requests, the bytes the
// program read, and the blob ranges those reads map to (what any start
// must fetch).
type startObserver struct {
	tl    timeline
	reads atomic.Int64
	rec   *trace.Recorder
}

func newStartObserver() *startObserver { return &startObserver{rec: trace.NewRecorder()} }

// attach lets the recorder map device reads to blob ranges.
func (o *startObserver) attach(bs *backstore.Backstore) { o.rec.Attach(bs) }

func (o *startObserver) DeviceRead(ev backstore.DeviceRead) {
	o.reads.Add(ev.Length)
	o.rec.DeviceRead(ev)
}

func (o *startObserver) BlobFetch(ev backstore.BlobFetch) { o.tl.BlobFetch(ev) }

// result is the start as measured: took from its beginning to ready.
func (o *startObserver) result(mode string, start time.Time, took time.Duration, proxy *netshape.Proxy) Start {
	s := proxy.Stats()
	return Start{Mode: mode, Timeline: o.tl.since(start), Seconds: took.Seconds(), Requests: s.Requests, Fetched: s.Bytes,
		ReadBytes: o.reads.Load(), NeededBytes: o.rec.Trace("", nil, "").Bytes()}
}
