package reports

import (
	"context"
	"fmt"
	"github.com/dejavu-project/dejavu/launch/timed"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/lazymount"
)

// Runtimes: how an experiment starts the workload.
const (
	// RuntimeDejavu mounts the image and starts its program in this
	// process, as `dejavu run` does.
	RuntimeDejavu = "dejavu"
	// RuntimeContainerd pulls the image into a containerd of its own with
	// the dejavu snapshotter and starts it with `ctr run`.
	RuntimeContainerd = "containerd"
)

// Modes lists the modes a runtime can start in.
func Modes(runtime string) []string {
	if runtime == RuntimeContainerd {
		return []string{"lazy", "prefetch", "warm"}
	}
	return []string{"full", "lazy", "prefetch", "fifo", "warm"}
}

// Experiment is a startup comparison: the workload started again and again
// through a shaped link to its registry, alternating modes run by run.
type Experiment struct {
	Ref       string // in a registry reachable over plain HTTP
	Program   timed.Program
	ReadySpec string // the readiness probe as given, for the results
	Modes     []string
	Runs      int
	RTT       time.Duration
	Bandwidth int64  // bytes per second; 0: unlimited
	Runtime   string // RuntimeDejavu (default) or RuntimeContainerd
	// Trace and Workload choose the trace for prefetch and fifo starts
	// (lazymount.WithTrace, WithWorkload); Workers and Batch tune it.
	Trace, Workload string
	Workers         int
	Batch           int64
	RefOptions      []imageref.Option
	// Progress, when set, gets a line per start.
	Progress io.Writer
}

// starter makes one start in a mode through the shaped link.
type starter interface {
	start(ctx context.Context, mode, ref string, proxy *netshape.Proxy) (Start, error)
	Close() error
}

// Run runs the experiment and returns its results, summarized.
func Run(ctx context.Context, e Experiment) (*Results, error) {
	if e.Runtime == "" {
		e.Runtime = RuntimeDejavu
	}
	if e.Runtime != RuntimeDejavu && e.Runtime != RuntimeContainerd {
		return nil, fmt.Errorf("reports: runtime %q: want %s or %s", e.Runtime, RuntimeDejavu, RuntimeContainerd)
	}
	for _, m := range e.Modes {
		if !slices.Contains(Modes(e.Runtime), m) {
			return nil, fmt.Errorf("reports: mode %q: want some of %s with the %s runtime", m, strings.Join(Modes(e.Runtime), ","), e.Runtime)
		}
	}
	if e.Runtime == RuntimeContainerd && e.ReadySpec != "" && e.ReadySpec != "exit" {
		return nil, fmt.Errorf("reports: with containerd a start is ready when its container exits (ctr run waits for it); readiness %q is not supported", e.ReadySpec)
	}
	ref, err := imageref.Parse(e.Ref)
	if err != nil {
		return nil, err
	}
	if ref.Kind != imageref.KindRegistry {
		return nil, fmt.Errorf("reports: %s: the experiment needs an image in a registry", e.Ref)
	}
	host := ref.Name.Context().RegistryStr()
	proxy, err := netshape.Start("http://"+host, netshape.WithRTT(e.RTT), netshape.WithBandwidth(e.Bandwidth))
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	shaped := strings.Replace(ref.Name.String(), host, proxy.Addr(), 1)
	var s starter
	if e.Runtime == RuntimeContainerd {
		s, err = newContainerdStarter(ctx, &e)
	} else {
		s, err = newLocalStarter(&e)
	}
	if err != nil {
		return nil, err
	}
	defer s.Close()
	res := &Results{Image: e.Ref, Command: e.Program.Args, Ready: e.ReadySpec, RTT: e.RTT.String(), Bandwidth: e.Bandwidth, Runs: e.Runs, Runtime: e.Runtime}
	for run := 1; run <= e.Runs; run++ {
		for k := range e.Modes {
			// Rotate the order so that no mode always follows another.
			mode := e.Modes[(k+run-1)%len(e.Modes)]
			st, err := s.start(ctx, mode, shaped, proxy)
			if err != nil {
				return nil, fmt.Errorf("run %d, %s: %w", run, mode, err)
			}
			st.Run = run
			res.Starts = append(res.Starts, st)
			if e.Progress != nil {
				fmt.Fprintf(e.Progress, "run %d %-8s %7.3fs  %5d requests  %s\n", run, mode, st.Seconds, st.Requests, HumanBytes(st.Fetched))
			}
		}
	}
	res.Summarize(e.RTT)
	return res, nil
}

// mountOptions are the lazymount options every start shares.
func (e *Experiment) mountOptions() []lazymount.Option {
	return []lazymount.Option{lazymount.WithRefOptions(e.RefOptions...), lazymount.WithPrefetchWorkers(e.Workers), lazymount.WithPrefetchBatch(e.Batch)}
}

// localStarter mounts and starts the workload in this process.
type localStarter struct {
	e    *Experiment
	work string
}

func newLocalStarter(e *Experiment) (*localStarter, error) {
	work, err := os.MkdirTemp("", "dejavu-bench-")
	if err != nil {
		return nil, err
	}
	return &localStarter{e: e, work: work}, nil
}

func (s *localStarter) Close() error { return os.RemoveAll(s.work) }

func (s *localStarter) start(ctx context.Context, mode, ref string, proxy *netshape.Proxy) (Start, error) {
	cache, err := os.MkdirTemp(s.work, "cache-"+mode+"-")
	if err != nil {
		return Start{}, err
	}
	opts := append(s.e.mountOptions(), lazymount.WithStateDir(s.work+"/state"), lazymount.WithTrace(lazymount.TraceNone))
	switch mode {
	case "prefetch":
		opts = append(opts, lazymount.WithTrace(s.e.Trace), lazymount.WithWorkload(s.e.Workload))
	case "fifo":
		opts = append(opts, lazymount.WithTrace(s.e.Trace), lazymount.WithWorkload(s.e.Workload), lazymount.WithPolicy("fifo"))
	case "warm":
		os.Remove(cache)
		cache = s.work + "/warm-cache"
		if _, err := os.Stat(cache); err != nil {
			// Fill the warm cache once, outside the measurement.
			if s.e.Progress != nil {
				fmt.Fprintln(s.e.Progress, "filling the warm cache: the whole image, once, through the shaped link (not timed)")
			}
			if err := downloadAll(ctx, ref, cache, s.e.RefOptions); err != nil {
				return Start{}, err
			}
		}
	}
	if err := timed.DropPageCache(); err != nil {
		slog.Warn("dropping the page cache", "err", err)
	}
	proxy.Reset()
	obs := newStartObserver()
	opts = append(opts, lazymount.WithOpened(obs.attach),
		lazymount.WithBackstoreOptions(backstore.WithCacheDir(cache), backstore.WithObserver(obs)))
	start := time.Now()
	obs.rec.Restart(start)
	if mode == "full" {
		if err := downloadAll(ctx, ref, cache, s.e.RefOptions); err != nil {
			return Start{}, err
		}
	}
	pulled := time.Since(start)
	t, err := timed.Start(ctx, ref, s.e.Program, opts...)
	if err != nil {
		return Start{}, err
	}
	st := obs.result(mode, start, pulled+t.Total, proxy)
	if mode == "prefetch" || mode == "fifo" {
		st.Prefetch = &t.Prefetch
	}
	// Each cold cache is used once.
	if mode != "warm" {
		os.RemoveAll(cache)
	}
	return st, nil
}

// downloadAll fetches every layer blob whole into the cache, as a pull does.
func downloadAll(ctx context.Context, ref, cache string, ropts []imageref.Option) error {
	bs, err := backstore.Open(ctx, ref, backstore.WithCacheDir(cache), backstore.WithRefOptions(ropts...))
	if err != nil {
		return err
	}
	defer bs.Close()
	for i, l := range bs.Layers() {
		if err := bs.Prefetch(ctx, i, 0, l.Descriptor.Size); err != nil {
			return err
		}
	}
	return nil
}

// timeline keeps a start's blob fetches.
type timeline struct {
	mu      sync.Mutex
	fetches []backstore.BlobFetch
}

func (t *timeline) DeviceRead(backstore.DeviceRead) {}

func (t *timeline) BlobFetch(ev backstore.BlobFetch) {
	t.mu.Lock()
	t.fetches = append(t.fetches, ev)
	t.mu.Unlock()
}

// since returns the fetches relative to the start's beginning.
func (t *timeline) since(start time.Time) []Fetch {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Fetch, 0, len(t.fetches))
	for _, f := range t.fetches {
		out = append(out, Fetch{At: f.Start.Sub(start).Seconds(), Took: f.Latency.Seconds(), Cause: f.Cause.String(),
			Bytes: f.Length, Ranges: max(f.Ranges, 1)})
	}
	return out
}
