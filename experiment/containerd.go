package experiment

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
	"github.com/dejavu-project/dejavu/internal/bench/containerdenv"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/reports"
	"github.com/dejavu-project/dejavu/snapshotter"
	"github.com/dejavu-project/dejavu/trace"
)

// containerdStarter starts the workload through containerd (the machine's
// containerd and runc, with a configuration of its own) and the dejavu
// snapshotter, which runs in this process so that each start's requests,
// reads and prefetch outcome can be seen.
type containerdStarter struct {
	e     *Experiment
	dir   string
	cache string
	sn    *snapshotter.Snapshotter
	ctd   *containerdenv.Daemon
	stop  context.CancelFunc
	done  chan error
	n     int
	// obs and report belong to the start being measured.
	obs    atomic.Pointer[startObserver]
	report atomic.Pointer[prefetch.Report]
}

func newContainerdStarter(ctx context.Context, e *Experiment) (*containerdStarter, error) {
	dir, err := os.MkdirTemp("", "djv-bench-ctd-") // short: unix socket paths are
	if err != nil {
		return nil, err
	}
	s := &containerdStarter{e: e, dir: dir, cache: filepath.Join(dir, "cache"), done: make(chan error, 1)}
	opts := append(e.mountOptions(),
		lazymount.WithBackstoreOptions(backstore.WithCacheDir(s.cache), backstore.WithObserver(s)),
		lazymount.WithOpened(func(bs *backstore.Backstore) {
			if o := s.obs.Load(); o != nil {
				o.capture.Attach(bs)
			}
		}))
	s.sn, err = snapshotter.New(ctx, filepath.Join(dir, "sn"), snapshotter.WithMountOptions(opts...),
		snapshotter.WithUnmounted(func(_ string, r prefetch.Report) { s.report.Store(&r) }))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sock := filepath.Join(dir, "sn.sock")
	sctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go func() { s.done <- snapshotter.Serve(sctx, s.sn, sock) }()
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			s.Close()
			return nil, fmt.Errorf("experiment: the snapshotter did not start serving on %s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The snapshotter first: containerd backs off from a plugin it found down.
	if s.ctd, err = containerdenv.Start(ctx, filepath.Join(dir, "ctd"), containerdenv.WithProxySnapshotter("dejavu", sock), containerdenv.WithNamespace("dejavu-bench")); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// DeviceRead and BlobFetch pass the snapshotter's events to the start
// being measured.
func (s *containerdStarter) DeviceRead(ev backstore.DeviceRead) {
	if o := s.obs.Load(); o != nil {
		o.DeviceRead(ev)
		o.capture.DeviceRead(ev)
	}
}

func (s *containerdStarter) BlobFetch(ev backstore.BlobFetch) {
	if o := s.obs.Load(); o != nil {
		o.BlobFetch(ev)
	}
}

// Close stops containerd and the snapshotter and removes their state.
func (s *containerdStarter) Close() error {
	var err error
	if s.ctd != nil {
		err = s.ctd.Close()
	}
	s.stop()
	<-s.done
	if cerr := s.sn.Close(); err == nil {
		err = cerr
	}
	os.RemoveAll(s.dir)
	return err
}

// unmounted waits until the snapshotter has no image mounted: containerd
// removes snapshots in its garbage collection, after ctr returns.
func (s *containerdStarter) unmounted() error {
	for i := 0; s.sn.Mounted() > 0; i++ {
		if i == 600 {
			return fmt.Errorf("experiment: the image stayed mounted 60s after its container was removed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// forget removes the image from containerd and waits until the
// snapshotter has let go of it.
func (s *containerdStarter) forget(ctx context.Context, ref string) error {
	if _, err := s.ctd.Ctr(ctx, "image", "rm", ref); err != nil && !strings.Contains(err.Error(), "not found") {
		return err
	}
	return s.unmounted()
}

func (s *containerdStarter) pull(ctx context.Context, ref string) error {
	_, err := snapshotter.Pull(ctx, s.ctd.Address, ref, snapshotter.WithNamespace(s.ctd.Namespace))
	return err
}

// run starts a container and waits for it to exit.
func (s *containerdStarter) run(ctx context.Context, ref, trace string) error {
	s.n++
	a := append([]string{"run", "--rm", "--snapshotter", "dejavu", "--snapshotter-label", snapshotter.LabelTrace + "=" + trace}, s.ctd.RunFlags()...)
	if s.e.Workload != "" {
		a = append(a, "--snapshotter-label", snapshotter.LabelWorkload+"="+s.e.Workload)
	}
	a = append(append(a, ref, fmt.Sprintf("bench-%d", s.n)), s.e.Program.Args...)
	_, err := s.ctd.Ctr(ctx, a...)
	return err
}

// start makes one start: pull (metadata only) and run, timed together. A
// warm start finds the image pulled and its bytes in the cache. Every start
// ends with the image removed and unmounted, outside the timing.
func (s *containerdStarter) start(ctx context.Context, mode reports.Mode, ref string, proxy *netshape.Proxy) (reports.Start, error) {
	tr := trace.SourceSpec{Kind: trace.SourceNone}.String()
	if mode == reports.ModePrefetch {
		tr = s.e.source.String()
	}
	os.RemoveAll(s.cache)
	if mode == reports.ModeWarm {
		// Fill the cache and keep the image; not timed, so unshaped.
		restore := proxy.Unshaped()
		err := s.pull(ctx, ref)
		if err == nil {
			err = s.run(ctx, ref, trace.SourceSpec{Kind: trace.SourceNone}.String())
		}
		restore()
		if err != nil {
			return reports.Start{}, err
		}
		if err := s.unmounted(); err != nil {
			return reports.Start{}, err
		}
	}
	s.e.beforeStart(proxy)
	start := time.Now()
	obs := newStartObserver(start)
	s.obs.Store(obs)
	s.report.Store(nil)
	if mode.Cold() {
		if err := s.pull(ctx, ref); err != nil {
			return reports.Start{}, err
		}
	}
	if err := s.run(ctx, ref, tr); err != nil {
		return reports.Start{}, err
	}
	st := obs.result(mode, start, time.Since(start), proxy)
	if err := s.forget(ctx, ref); err != nil {
		return reports.Start{}, err
	}
	s.obs.Store(nil)
	if r := s.report.Load(); mode == reports.ModePrefetch && r != nil {
		st.Prefetch = r
	}
	return st, nil
}
