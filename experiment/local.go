package experiment

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/launch/timed"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/replay"
	"github.com/dejavu-project/dejavu/reports"
	"github.com/dejavu-project/dejavu/trace"
)

// localStarter mounts and starts the workload in this process.
type localStarter struct {
	e    *Experiment
	work string
	disk *localDisk // written at the first local start
}

func newLocalStarter(e *Experiment) (*localStarter, error) {
	work, err := os.MkdirTemp("", "dejavu-bench-")
	if err != nil {
		return nil, err
	}
	return &localStarter{e: e, work: work}, nil
}

func (s *localStarter) Close() error { return os.RemoveAll(s.work) }

func (s *localStarter) start(ctx context.Context, mode reports.Mode, ref string, proxy *netshape.Proxy) (reports.Start, error) {
	if mode == reports.ModeLocal {
		return s.startLocal(ctx, ref, proxy)
	}
	cache, err := os.MkdirTemp(s.work, "cache-"+string(mode)+"-")
	if err != nil {
		return reports.Start{}, err
	}
	opts := append(s.e.mountOptions(), lazymount.WithStateDir(s.work+"/state"), lazymount.WithTrace(trace.SourceSpec{Kind: trace.SourceNone}))
	switch mode {
	case reports.ModePrefetch:
		opts = append(opts, lazymount.WithTrace(s.e.source), lazymount.WithWorkload(s.e.Workload))
	case reports.ModeFIFO:
		opts = append(opts, lazymount.WithTrace(s.e.source), lazymount.WithWorkload(s.e.Workload), lazymount.WithPolicy(replay.PolicyFIFO))
	case reports.ModeWarm:
		os.Remove(cache)
		cache = s.warmCache()
		if err := s.fillWarmCache(ctx, ref, cache, proxy); err != nil {
			return reports.Start{}, err
		}
	}
	s.e.beforeStart(proxy)
	start := time.Now()
	obs := newStartObserver(start)
	opts = append(append(opts, obs.mountOptions()...), lazymount.WithBackstoreOptions(backstore.WithCacheDir(cache)))
	if mode == reports.ModeFull {
		if err := downloadAll(ctx, ref, cache, s.e); err != nil {
			return reports.Start{}, err
		}
	}
	pulled := time.Since(start)
	t, err := timed.Start(ctx, ref, s.e.Program, opts...)
	if err != nil {
		return reports.Start{}, err
	}
	st := obs.result(mode, start, pulled+t.Total, proxy)
	if mode.Prefetches() {
		st.Prefetch = &t.Prefetch
	}
	// Each cold cache is used once.
	if mode.Cold() {
		os.RemoveAll(cache)
	}
	return st, nil
}

// warmCache is the cache the warm starts share.
func (s *localStarter) warmCache() string { return s.work + "/warm-cache" }

// fillWarmCache fills the warm cache once, outside the measurement, with
// the link unshaped: the warm starts then find the manifest under the
// shaped host without minutes of downloading through the shaped link.
func (s *localStarter) fillWarmCache(ctx context.Context, ref, cache string, proxy *netshape.Proxy) error {
	if _, err := os.Stat(cache); err == nil {
		return nil
	}
	if s.e.Progress != nil {
		fmt.Fprintln(s.e.Progress, "filling the warm cache: the whole image, once (not timed)")
	}
	defer proxy.Unshaped()()
	return downloadAll(ctx, ref, cache, s.e)
}

// downloadAll fetches every layer blob whole into the cache, as a pull does.
func downloadAll(ctx context.Context, ref, cache string, e *Experiment) error {
	bs, err := backstore.Open(ctx, ref, backstore.WithCacheDir(cache), backstore.WithRefOptions(e.RefOptions...), backstore.WithLogger(e.Log))
	if err != nil {
		return err
	}
	defer bs.Close()
	for i, l := range bs.Layers() {
		if err := bs.Prefetch(ctx, i, 0, l.Descriptor.Size); err != nil {
			return fmt.Errorf("experiment: downloading layer %d: %w", i, err)
		}
	}
	return nil
}
