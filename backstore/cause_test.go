package backstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/dejavu-project/dejavu/backstore"
)

// causes records the cause of every blob fetch.
type causes struct {
	mu   sync.Mutex
	seen []backstore.Cause
}

func (c *causes) DeviceRead(backstore.DeviceRead) {}

func (c *causes) BlobFetch(ev backstore.BlobFetch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, ev.Cause)
}

// Opening an image reads its layers' headers and indexes as CauseOpen, not
// as demand: no program waits on them, so the prefetch need not hold off
// for them (it does for demand). Reads of the device are demand.
func TestOpenReadsAreNotDemand(t *testing.T) {
	reg := startRegistry(t)
	ref, _, _ := builtImage(t, reg, 400)
	c := &causes{}
	var peak int
	var wg sync.WaitGroup
	stop := make(chan struct{})
	bs, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(t.TempDir()), backstore.WithObserver(c),
		backstore.WithFetchable(func(f *backstore.Fetchable) {
			wg.Go(func() {
				for {
					peak = max(peak, f.DemandInFlight())
					select {
					case <-stop:
						return
					default:
					}
				}
			})
		}))
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	c.mu.Lock()
	opened := append([]backstore.Cause(nil), c.seen...)
	c.mu.Unlock()
	if len(opened) == 0 {
		t.Fatal("opening fetched nothing")
	}
	for i, cause := range opened {
		if cause != backstore.CauseOpen {
			t.Errorf("fetch %d while opening: cause %v, want open", i, cause)
		}
	}
	if peak != 0 {
		t.Errorf("%d demand fetches in flight while the image opened, want none", peak)
	}
	readAll(t, bs, bs.Size())
	c.mu.Lock()
	defer c.mu.Unlock()
	read := c.seen[len(opened):]
	if len(read) == 0 {
		t.Fatal("reading the device fetched nothing")
	}
	for i, cause := range read {
		if cause != backstore.CauseDemand {
			t.Errorf("fetch %d for a read of the device: cause %v, want demand", i, cause)
		}
	}
}
