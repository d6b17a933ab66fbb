package trace

import (
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore"
)

// Source is what a Recorder needs of an opened image.
type Source interface {
	BlobRanges(off, n int64) []backstore.BlobRange
	Digest() v1.Hash
	Manifest() *v1.Manifest
}

// Recorder turns device reads into trace records: each read is mapped
// through the merged index to the layer blob ranges that hold it. It is a
// backstore.Observer; register it with backstore.WithObserver and call
// Attach once the image is open.
type Recorder struct {
	mu    sync.Mutex
	src   Source
	start time.Time
	recs  []Record
}

// NewRecorder returns a recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Attach sets the image reads are mapped through.
func (r *Recorder) Attach(src Source) {
	r.mu.Lock()
	r.src = src
	r.mu.Unlock()
}

// Restart sets the time first accesses are measured from.
func (r *Recorder) Restart(t time.Time) {
	r.mu.Lock()
	r.start = t
	r.mu.Unlock()
}

// DeviceRead records the blob ranges a read needed.
func (r *Recorder) DeviceRead(ev backstore.DeviceRead) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src == nil || ev.Err != nil {
		return
	}
	first := ev.Start.Sub(r.start)
	for _, br := range r.src.BlobRanges(ev.Offset, ev.Length) {
		r.recs = append(r.recs, Record{Layer: br.Layer, Offset: br.Start, Length: br.End - br.Start, First: max(first, 0)})
	}
	// Keep memory in check on long runs: merging is cheap and loses
	// nothing (the earliest access of a range wins).
	if len(r.recs) > 1<<16 {
		r.recs = normalize(r.recs)
	}
}

// BlobFetch is not needed for the trace.
func (r *Recorder) BlobFetch(backstore.BlobFetch) {}

// Trace returns what was recorded, bound to the attached image.
func (r *Recorder) Trace(workload string, command []string, tool string) *Trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &Trace{Workload: workload, Command: command, Recorder: RecorderBackstore, Runs: 1, Tool: tool, Created: time.Now().UTC()}
	if r.src != nil {
		t.Image = r.src.Digest()
		for _, l := range r.src.Manifest().Layers {
			t.Layers = append(t.Layers, l.Digest)
		}
	}
	t.Records = normalize(append([]Record(nil), r.recs...))
	return t
}
