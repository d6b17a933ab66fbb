package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/launch/timed"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/reports"
	"github.com/dejavu-project/dejavu/trace"
)

// Modes lists the modes a runtime can start in.
func Modes(runtime reports.Runtime) []reports.Mode {
	if runtime == reports.RuntimeContainerd {
		return []reports.Mode{reports.ModeLazy, reports.ModePrefetch, reports.ModeWarm}
	}
	return slices.Clone(reports.AllModes)
}

// ParseModes reads a comma-separated list of modes that runtime can start
// in.
func ParseModes(runtime reports.Runtime, list string) ([]reports.Mode, error) {
	var out []reports.Mode
	for _, s := range strings.Split(list, ",") {
		m, err := reports.ParseMode(s)
		if err == nil && !slices.Contains(Modes(runtime), m) {
			err = fmt.Errorf("mode %q", s)
		}
		if err != nil {
			return nil, fmt.Errorf("experiment: %w: want some of %s with the %s runtime", err, join(Modes(runtime)), runtime)
		}
		out = append(out, m)
	}
	return out, nil
}

func join(modes []reports.Mode) string {
	s := make([]string, len(modes))
	for i, m := range modes {
		s[i] = string(m)
	}
	return strings.Join(s, ",")
}

// Experiment is a startup comparison: the workload started again and again
// through a shaped link to its registry, alternating modes run by run.
type Experiment struct {
	Ref       string // in a registry reachable over plain HTTP
	Program   timed.Program
	ReadySpec string // the readiness probe as given, for the results
	Modes     []reports.Mode
	Runs      int
	RTT       time.Duration
	Bandwidth int64 // bytes per second; 0: unlimited
	// Profile names the link (see Profiles) for the results; empty when
	// RTT and Bandwidth were given by hand.
	Profile string
	Runtime reports.Runtime // reports.RuntimeDejavu (default) or reports.RuntimeContainerd
	// Trace and Workload choose the trace for prefetch and fifo starts
	// (lazymount.WithTrace, WithWorkload): auto (default), FILE or
	// sha256:DIGEST; Workers and Batch tune the prefetch.
	Trace, Workload string
	source          trace.SourceSpec // Trace, parsed
	Workers         int
	Batch           int64
	RefOptions      []imageref.Option
	// Progress, when set, gets a line per start.
	Progress io.Writer
	// Log gets what goes wrong without failing a start (default: nothing).
	Log *slog.Logger
}

// starter makes one start in a mode through the shaped link.
type starter interface {
	start(ctx context.Context, mode reports.Mode, ref string, proxy *netshape.Proxy) (reports.Start, error)
	Close() error
}

// Run runs the experiment and returns its results, summarized.
func Run(ctx context.Context, e Experiment) (*reports.Results, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	ref, err := imageref.Parse(e.Ref)
	if err != nil {
		return nil, err
	}
	if ref.Kind != imageref.KindRegistry {
		return nil, fmt.Errorf("experiment: %s: the experiment needs an image in a registry", e.Ref)
	}
	host := ref.Name.Context().RegistryStr()
	proxy, err := netshape.Start("http://"+host, netshape.WithRTT(e.RTT), netshape.WithBandwidth(e.Bandwidth))
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	shaped := strings.Replace(ref.Name.String(), host, proxy.Addr(), 1)
	var s starter
	if e.Runtime == reports.RuntimeContainerd {
		s, err = newContainerdStarter(ctx, &e)
	} else {
		s, err = newLocalStarter(&e)
	}
	if err != nil {
		return nil, err
	}
	defer s.Close()
	res := &reports.Results{Image: e.Ref, Workload: e.Workload, Command: e.Program.Args, Ready: e.ReadySpec, RTT: e.RTT.String(), Bandwidth: e.Bandwidth, Runs: e.Runs, Runtime: e.Runtime, Profile: e.Profile}
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
				fmt.Fprintf(e.Progress, "run %d %-8s %7.3fs  %5d requests  %s\n", run, mode, st.Seconds, st.Requests, reports.HumanBytes(st.Fetched))
			}
		}
	}
	res.Summarize(e.RTT)
	return res, nil
}

// check validates the experiment and fills in its defaults.
func (e *Experiment) check() error {
	if e.Runtime == "" {
		e.Runtime = reports.RuntimeDejavu
	}
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
	if _, err := reports.ParseRuntime(string(e.Runtime)); err != nil {
		return err
	}
	for _, m := range e.Modes {
		if !slices.Contains(Modes(e.Runtime), m) {
			return fmt.Errorf("experiment: mode %q: want some of %s with the %s runtime", m, join(Modes(e.Runtime)), e.Runtime)
		}
	}
	if e.Trace != "" {
		src, err := trace.ParseSource(e.Trace)
		if err != nil {
			return err
		}
		e.source = src
	}
	if slices.ContainsFunc(e.Modes, reports.Mode.Prefetches) {
		if err := e.checkTrace(e.source); err != nil {
			return err
		}
	}
	if e.Runtime == reports.RuntimeContainerd && e.ReadySpec != "" && e.ReadySpec != "exit" {
		return fmt.Errorf("experiment: with containerd a start is ready when its container exits (ctr run waits for it); readiness %q is not supported", e.ReadySpec)
	}
	return nil
}

// checkTrace refuses a trace that the prefetch and fifo starts cannot use.
func (e *Experiment) checkTrace(src trace.SourceSpec) error {
	switch {
	case e.Runtime == reports.RuntimeContainerd && src.Kind != trace.SourceAuto && src.Kind != trace.SourceDigest:
		return fmt.Errorf("experiment: with containerd the trace is chosen by a snapshot label: auto or sha256:DIGEST, not %q", e.Trace)
	case src.Kind == trace.SourceNone:
		return errors.New("experiment: the prefetch and fifo starts need a trace: auto, FILE or sha256:DIGEST")
	case src.Kind == trace.SourceFile:
		if _, err := os.Stat(src.Path); err != nil {
			return fmt.Errorf("experiment: trace: %w", err)
		}
	}
	return nil
}

// mountOptions are the lazymount options every start shares.
func (e *Experiment) mountOptions() []lazymount.Option {
	return []lazymount.Option{lazymount.WithRefOptions(e.RefOptions...), lazymount.WithPrefetchWorkers(e.Workers), lazymount.WithPrefetchBatch(e.Batch)}
}

// beforeStart readies the link and the kernel for a start: the page cache
// dropped (cold as far as the kernel goes) and the link's counters reset.
func (e *Experiment) beforeStart(proxy *netshape.Proxy) {
	if err := timed.DropPageCache(); err != nil {
		e.Log.Warn("a start that may not be cold", "err", err)
	}
	proxy.Reset()
}
