package backstore

import (
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Cause says why a blob range was fetched.
type Cause int

// Causes of a fetch.
const (
	CauseDemand   Cause = iota // a read of the device needed it
	CausePrefetch              // fetched ahead of the program
	CauseOpen                  // headers and indexes read when the image opened
)

func (c Cause) String() string {
	switch c {
	case CauseDemand:
		return "demand"
	case CausePrefetch:
		return "prefetch"
	case CauseOpen:
		return "open"
	}
	return "unknown"
}

// DeviceRead is one read of the virtual device.
type DeviceRead struct {
	Offset, Length int64
	Start          time.Time
	Latency        time.Duration
	Cached         bool // every byte it needed was already in the cache
	Err            error
}

// BlobFetch is one request for a layer blob: Ranges byte ranges, the first
// at Offset, Length bytes in all.
type BlobFetch struct {
	Layer          int // index in the image, 0 = bottom
	Digest         v1.Hash
	Offset, Length int64 // blob coordinates
	Ranges         int
	Cause          Cause
	Start          time.Time
	Latency        time.Duration
	// FirstRun is how long after Start the first of its ranges was in the
	// cache: when the request's first bytes were of use.
	FirstRun time.Duration
	Attempts int
	Err      error
}

// Observer sees what the backstore does. Its methods are called
// synchronously from the reading goroutines, so they must be quick and safe
// for concurrent use.
type Observer interface {
	DeviceRead(DeviceRead)
	BlobFetch(BlobFetch)
}

// Slot is an Observer whose target is set later, for observers that need
// the opened image before they can work (a prefetch engine, a recorder).
// Until Set, events are dropped.
type Slot struct {
	p atomic.Pointer[Observer]
}

// Set directs events to o.
func (s *Slot) Set(o Observer) { s.p.Store(&o) }

// DeviceRead forwards the event.
func (s *Slot) DeviceRead(ev DeviceRead) {
	if o := s.p.Load(); o != nil {
		(*o).DeviceRead(ev)
	}
}

// BlobFetch forwards the event.
func (s *Slot) BlobFetch(ev BlobFetch) {
	if o := s.p.Load(); o != nil {
		(*o).BlobFetch(ev)
	}
}
