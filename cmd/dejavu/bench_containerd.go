package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/containerdenv"
	"github.com/dejavu-project/dejavu/internal/netshape"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/reports"
	"github.com/dejavu-project/dejavu/snapshotter"
	"github.com/dejavu-project/dejavu/trace"
)

// containerdModes are the modes a start through containerd can take.
var containerdModes = []string{"lazy", "prefetch", "warm"}

// containerdBench starts the workload through containerd (Debian's, with
// a configuration of its own) and the dejavu snapshotter, which runs in
// this process so that it can count each start's registry requests.
type containerdBench struct {
	dir   string
	cache string
	sn    *snapshotter.Snapshotter
	ctd   *containerdenv.Daemon
	slot  *backstore.Slot
	stop  context.CancelFunc
	done  chan error
	n     int
	// workload picks among several attached traces.
	workload string
	// opened and report are set for the start being measured.
	opened atomic.Pointer[func(*backstore.Backstore)]
	report atomic.Pointer[prefetch.Report]
}

func startContainerdBench(ctx context.Context, rf registryFlags, rp replayFlags) (*containerdBench, error) {
	ropts, err := rf.options()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "djv-bench-ctd-")
	if err != nil {
		return nil, err
	}
	b := &containerdBench{dir: dir, cache: filepath.Join(dir, "cache"), slot: &backstore.Slot{}, done: make(chan error, 1), workload: rp.workload}
	b.sn, err = snapshotter.New(ctx, filepath.Join(dir, "sn"), snapshotter.WithMountOptions(
		lazymount.WithRefOptions(ropts...),
		lazymount.WithBackstoreOptions(backstore.WithCacheDir(b.cache), backstore.WithObserver(b.slot)),
		lazymount.WithPrefetchWorkers(rp.workers), lazymount.WithPrefetchBatch(rp.batch),
		lazymount.WithOpened(func(bs *backstore.Backstore) {
			if f := b.opened.Load(); f != nil {
				(*f)(bs)
			}
		})),
		snapshotter.WithUnmounted(func(_ string, r prefetch.Report) { b.report.Store(&r) }))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sock := filepath.Join(dir, "sn.sock")
	sctx, stop := context.WithCancel(context.Background())
	b.stop = stop
	go func() { b.done <- snapshotter.Serve(sctx, b.sn, sock) }()
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			b.Close()
			return nil, fmt.Errorf("the snapshotter did not start serving on %s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.ctd, err = containerdenv.Start(ctx, filepath.Join(dir, "ctd"), containerdenv.WithProxySnapshotter("dejavu", sock), containerdenv.WithNamespace("dejavu-bench")); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close stops containerd and the snapshotter and removes their state.
func (b *containerdBench) Close() error {
	var err error
	if b.ctd != nil {
		err = b.ctd.Close()
	}
	b.stop()
	<-b.done
	if cerr := b.sn.Close(); err == nil {
		err = cerr
	}
	os.RemoveAll(b.dir)
	return err
}

// forget removes the image from containerd and waits until the
// snapshotter has let go of it (containerd removes snapshots in its
// garbage collection, after the command returns).
func (b *containerdBench) forget(ctx context.Context, ref string) error {
	if _, err := b.ctd.Ctr(ctx, "image", "rm", ref); err != nil && !strings.Contains(err.Error(), "not found") {
		return err
	}
	return b.unmounted()
}

// run starts a container and waits for it to exit.
func (b *containerdBench) run(ctx context.Context, ref string, trace string, args []string) error {
	b.n++
	a := append([]string{"run", "--rm", "--snapshotter", "dejavu", "--snapshotter-label", snapshotter.LabelTrace + "=" + trace}, b.ctd.RunFlags()...)
	if b.workload != "" {
		a = append(a, "--snapshotter-label", snapshotter.LabelWorkload+"="+b.workload)
	}
	a = append(append(a, ref, fmt.Sprintf("bench-%d", b.n)), args...)
	_, err := b.ctd.Ctr(ctx, a...)
	return err
}

// once makes one start: pull (metadata only) and run, timed together.
// A warm start finds the image pulled and its bytes in the cache. Every
// start ends with the image removed and unmounted, outside the timing.
func (b *containerdBench) once(ctx context.Context, mode, ref string, args []string, proxy *netshape.Proxy) (reports.Start, error) {
	tr := "none"
	if mode == "prefetch" {
		tr = "auto"
	}
	os.RemoveAll(b.cache)
	if mode == "warm" {
		// Fill the cache and keep the image.
		if _, err := snapshotter.Pull(ctx, b.ctd.Address, ref, snapshotter.WithNamespace(b.ctd.Namespace)); err != nil {
			return reports.Start{}, err
		}
		if err := b.run(ctx, ref, "none", args); err != nil {
			return reports.Start{}, err
		}
		if err := b.unmounted(); err != nil {
			return reports.Start{}, err
		}
	}
	dropPageCache()
	proxy.Reset()
	var reads atomic.Int64
	tl := &timeline{}
	rec := trace.NewRecorder()
	attach := func(bs *backstore.Backstore) { rec.Attach(bs) }
	b.opened.Store(&attach)
	b.report.Store(nil)
	b.slot.Set(multiObserver{tl, readCounter{&reads}, rec})
	start := time.Now()
	rec.Restart(start)
	if mode != "warm" {
		if _, err := snapshotter.Pull(ctx, b.ctd.Address, ref, snapshotter.WithNamespace(b.ctd.Namespace)); err != nil {
			return reports.Start{}, err
		}
	}
	if err := b.run(ctx, ref, tr, args); err != nil {
		return reports.Start{}, err
	}
	took := time.Since(start)
	s := proxy.Stats()
	st := reports.Start{Mode: mode, Timeline: tl.since(start), Seconds: took.Seconds(), Requests: s.Requests, Fetched: s.Bytes, ReadBytes: reads.Load()}
	if err := b.forget(ctx, ref); err != nil {
		return reports.Start{}, err
	}
	b.slot.Set(multiObserver{})
	b.opened.Store(nil)
	st.NeededBytes = rec.Trace("", nil, "").Bytes()
	if r := b.report.Load(); mode == "prefetch" && r != nil {
		st.Prefetch = r
	}
	return st, nil
}

// unmounted waits until the snapshotter has no image mounted.
func (b *containerdBench) unmounted() error {
	for i := 0; b.sn.Mounted() > 0; i++ {
		if i == 600 {
			return fmt.Errorf("the image stayed mounted 60s after its container was removed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// multiObserver passes events to several observers.
type multiObserver []backstore.Observer

func (m multiObserver) DeviceRead(ev backstore.DeviceRead) {
	for _, o := range m {
		o.DeviceRead(ev)
	}
}

func (m multiObserver) BlobFetch(ev backstore.BlobFetch) {
	for _, o := range m {
		o.BlobFetch(ev)
	}
}
