package prefetch_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/replay"
	"github.com/dejavu-project/dejavu/trace"
)

type fixture struct {
	ref   string // through a 10 ms proxy
	local *lsmt.Device
	want  []byte
	reads [][2]int64 // the "program": device ranges, in order
}

func setup(t *testing.T) *fixture {
	t.Helper()
	testenv.RequireCommands(t, "mke2fs")
	src := t.TempDir()
	treetest.Generate(t, src, treetest.Spec{Files: 600, MaxSmall: 48 << 10, Seed: 4})
	built, err := overlaybd.Build(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { built.Close() })
	reg := testreg.Start(t)
	r, _ := imageref.Parse(reg.Addr + "/app:v1")
	if err := imageref.WriteImage(context.Background(), r, built.Image); err != nil {
		t.Fatal(err)
	}
	p, err := netshape.Start("http://"+reg.Addr, netshape.WithRTT(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	f, _ := os.Open(built.LayerPath)
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	blob, err := overlaybd.OpenBlob(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{ref: p.Addr() + "/app:v1"}
	fx.local, _ = overlaybd.OpenDevice(blob)
	fx.want = make([]byte, fx.local.Size())
	fx.local.ReadAt(fx.want, 0)
	// The program reads the mapped data in a shuffled but fixed order.
	rng := rand.New(rand.NewPCG(5, 6))
	for _, m := range fx.local.Index().Mappings() {
		for off := int64(m.Offset) * 512; off < int64(m.End())*512; off += 128 << 10 {
			fx.reads = append(fx.reads, [2]int64{off, min(128<<10, int64(m.End())*512-off)})
		}
	}
	rng.Shuffle(len(fx.reads), func(i, j int) { fx.reads[i], fx.reads[j] = fx.reads[j], fx.reads[i] })
	return fx
}

// run plays the program against a fresh backstore, checking every byte.
func (fx *fixture) run(t *testing.T, obs backstore.Observer) (*backstore.Backstore, time.Duration) {
	t.Helper()
	opts := []backstore.Option{backstore.WithCacheDir(t.TempDir())}
	if obs != nil {
		opts = append(opts, backstore.WithObserver(obs))
	}
	bs, err := backstore.Open(context.Background(), fx.ref, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return bs, 0
}

func (fx *fixture) play(t *testing.T, bs *backstore.Backstore) time.Duration {
	t.Helper()
	start := time.Now()
	for _, r := range fx.reads {
		buf := make([]byte, r[1])
		if _, err := bs.ReadAt(buf, r[0]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, fx.want[r[0]:r[0]+r[1]]) {
			t.Fatalf("bytes at %d differ while prefetching", r[0])
		}
	}
	return time.Since(start)
}

// record plays the program once, lazily, and returns its trace.
func (fx *fixture) record(t *testing.T) *trace.Trace {
	t.Helper()
	rec := trace.NewRecorder()
	bs, _ := fx.run(t, rec)
	defer bs.Close()
	rec.Attach(bs)
	fx.play(t, bs)
	return rec.Trace("test", nil, "test")
}

func TestPrefetchAheadOfTheProgram(t *testing.T) {
	fx := setup(t)
	// Record the program once.
	rec := trace.NewRecorder()
	bs, _ := fx.run(t, rec)
	rec.Attach(bs)
	lazy := fx.play(t, bs)
	tr := rec.Trace("test", nil, "test")
	bs.Close()

	// Cold again, with the trace replayed.
	slot := &backstore.Slot{}
	bs, _ = fx.run(t, slot)
	defer bs.Close()
	plan, err := replay.New(tr, bs.Manifest().Layers, bs.Held, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := prefetch.Start(context.Background(), plan, bs)
	slot.Set(eng)
	withPrefetch := fx.play(t, bs)
	eng.Stop()
	rep := eng.Report()
	t.Logf("lazy %v, with prefetch %v; plan %d units %d bytes; %+v", lazy, withPrefetch, len(plan.Units), plan.Bytes, rep)
	if rep.Hit+rep.Partial == 0 || rep.Failed > 0 {
		t.Fatalf("report %+v", rep)
	}
	if withPrefetch >= lazy {
		t.Errorf("prefetch (%v) was not faster than lazy (%v)", withPrefetch, lazy)
	}
}

func TestStopMidReplay(t *testing.T) {
	fx := setup(t)
	tr := fx.record(t)
	bs, _ := fx.run(t, nil)
	plan, _ := replay.New(tr, bs.Manifest().Layers, bs.Held, replay.Options{MaxUnit: 64 << 10})
	eng := prefetch.Start(context.Background(), plan, bs, prefetch.WithWorkers(4))
	time.Sleep(30 * time.Millisecond)
	eng.Stop()
	bs.Close()
	// Idle keep-alive connections may stay; nothing of the engine's or
	// the backstore's may.
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		left := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "dejavu/prefetch.(*Engine)") || strings.Contains(g, "dejavu/backstore.(*lazyBlob)") {
				left++
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the engine or backstore left after stopping:\n%s", left, stacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
