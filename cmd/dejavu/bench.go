package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/netshape"
	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/trace"
)

// benchStart is one timed start.
type benchStart struct {
	Mode      string  `json:"mode"`
	Run       int     `json:"run"`
	Seconds   float64 `json:"seconds"`
	Requests  int64   `json:"registryRequests"`
	Fetched   int64   `json:"registryBytes"`
	ReadBytes int64   `json:"programReadBytes"`
	// NeededBytes are the blob bytes the program's reads mapped to: what
	// any start must fetch, whatever its policy (layer indexes aside).
	NeededBytes int64            `json:"neededBytes"`
	Prefetch    *prefetch.Report `json:"prefetch,omitempty"`
}

type benchSummary struct {
	Mode           string  `json:"mode"`
	MedianSeconds  float64 `json:"medianSeconds"`
	MedianRequests int64   `json:"medianRequests"`
	MedianBytes    int64   `json:"medianBytes"`
}

type benchResults struct {
	Image     string         `json:"image"`
	Command   []string       `json:"command,omitempty"`
	Ready     string         `json:"ready"`
	RTT       string         `json:"rtt"`
	Bandwidth int64          `json:"bandwidthBytesPerSecond"`
	Runs      int            `json:"runs"`
	Starts    []benchStart   `json:"starts"`
	Summary   []benchSummary `json:"summary"`
	// PhysicalLimitSeconds is max(warm, needed bytes / bandwidth + RTT),
	// with the median needed bytes of the cold starts: no cold start can
	// be faster.
	PhysicalLimitSeconds float64 `json:"physicalLimitSeconds"`
	NeededBytes          int64   `json:"neededBytes"`
}

func newBenchCmd() *cobra.Command {
	var rf registryFlags
	var ready, modes, out, bandwidth string
	rp := replayFlags{trace: "auto", workers: defaultPrefetchWorkers, batch: defaultPrefetchBatch}
	var runs int
	var rtt, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "bench REF [-- CMD ARGS...]",
		Short: "Compare cold, lazy, prefetch and warm starts of a workload",
		Long: `Bench starts the workload again and again through a shaped link to the
registry (round-trip delay, bandwidth), alternating modes run by run:

  full      download the whole layer blobs first, then start (an ordinary pull)
  lazy      fetch on demand only
  prefetch  replay the attached trace (or --trace) with dejavu's policy
  fifo      replay it the way overlaybd does (recorded order, no priority)
  warm      everything already in the local cache

Before every cold start the cache is empty and the page cache dropped. For
each start it records the time from mount start to ready, registry requests
and bytes, the bytes the program read, and the prefetch outcomes, and writes
them with per-mode medians as JSON. The registry must be reachable over plain
HTTP (a local one); the shaping proxy sits on loopback. Needs root.`,
		Example: `  dejavu bench localhost:5000/py:latest --modes full,lazy,prefetch,fifo,warm --runs 5 --rtt 20ms --bandwidth 100Mbit -o out/bench/results.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			probe, err := launch.ParseProbe(ready)
			if err != nil {
				return err
			}
			bps, err := parseBandwidth(bandwidth)
			if err != nil {
				return err
			}
			ms := strings.Split(modes, ",")
			for _, m := range ms {
				if !slices.Contains([]string{"full", "lazy", "prefetch", "fifo", "warm"}, m) {
					return fmt.Errorf("--modes: unknown mode %q", m)
				}
			}
			ref, err := imageref.Parse(args[0])
			if err != nil {
				return err
			}
			if ref.Kind != imageref.KindRegistry {
				return fmt.Errorf("%s: bench needs an image in a registry", args[0])
			}
			host := ref.Name.Context().RegistryStr()
			proxy, err := netshape.Start("http://"+host, netshape.WithRTT(rtt), netshape.WithBandwidth(bps))
			if err != nil {
				return err
			}
			defer proxy.Close()
			shaped := strings.Replace(ref.Name.String(), host, proxy.Addr(), 1)
			work, err := os.MkdirTemp("", "dejavu-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(work)
			res := benchResults{Image: args[0], Command: args[1:], Ready: ready, RTT: rtt.String(), Bandwidth: bps, Runs: runs}
			warmCache := filepath.Join(work, "warm-cache")
			for run := 1; run <= runs; run++ {
				for k := range ms {
					// Rotate the order so that no mode always follows another.
					mode := ms[(k+run-1)%len(ms)]
					st, err := benchOnce(cmd, mode, shaped, args[1:], rf, probe, timeout, rp, filepath.Join(work, fmt.Sprintf("cache-%d-%s", run, mode)), warmCache, proxy)
					if err != nil {
						return fmt.Errorf("run %d, %s: %w", run, mode, err)
					}
					st.Run = run
					res.Starts = append(res.Starts, st)
					fmt.Fprintf(cmd.ErrOrStderr(), "run %d %-8s %7.3fs  %5d requests  %s\n", run, mode, st.Seconds, st.Requests, humanBytes(st.Fetched))
				}
			}
			for _, m := range ms {
				res.Summary = append(res.Summary, summarizeMode(m, res.Starts))
			}
			res.physicalLimit(rtt)
			if out != "" {
				if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
					return err
				}
				b, _ := json.MarshalIndent(res, "", "  ")
				if err := os.WriteFile(out, b, 0o644); err != nil {
					return err
				}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODE\tMEDIAN\tVS LAZY\tVS LIMIT\tREQUESTS\tFETCHED")
			var lazy float64
			for _, s := range res.Summary {
				if s.Mode == "lazy" {
					lazy = s.MedianSeconds
				}
			}
			ratio := func(a, b float64) string {
				if a <= 0 || b <= 0 {
					return "-"
				}
				return fmt.Sprintf("%.2fx", a/b)
			}
			for _, s := range res.Summary {
				limit := ratio(s.MedianSeconds, res.PhysicalLimitSeconds)
				if s.Mode == "warm" {
					limit = "-" // the limit bounds cold starts
				}
				fmt.Fprintf(tw, "%s\t%.3fs\t%s\t%s\t%d\t%s\n", s.Mode, s.MedianSeconds, ratio(lazy, s.MedianSeconds),
					limit, s.MedianRequests, humanBytes(s.MedianBytes))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if res.PhysicalLimitSeconds > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "physical limit %.3fs (the start needs %s)\n", res.PhysicalLimitSeconds, humanBytes(res.NeededBytes))
			}
			return nil
		},
	}
	rf.register(cmd.Flags())
	fl := cmd.Flags()
	fl.StringVar(&modes, "modes", "full,lazy,prefetch,fifo,warm", "modes to compare")
	fl.IntVar(&runs, "runs", 5, "starts per mode")
	fl.DurationVar(&rtt, "rtt", 20*time.Millisecond, "round trip to the registry")
	fl.StringVar(&bandwidth, "bandwidth", "100Mbit", "link bandwidth (e.g. 100Mbit, 12MiB; 0: unlimited)")
	fl.StringVar(&ready, "ready", "exit", "readiness probe: exit, tcp:PORT, http:URL or cmd:COMMAND")
	fl.DurationVar(&timeout, "timeout", 10*time.Minute, "give up on a start not ready within this")
	fl.StringVar(&rp.trace, "trace", "auto", "trace for prefetch and fifo: auto, FILE or sha256:DIGEST")
	fl.StringVar(&rp.workload, "workload", "", "with --trace auto: which workload's trace")
	fl.IntVar(&rp.workers, "prefetch-workers", defaultPrefetchWorkers, "prefetch mode: requests the prefetcher keeps in flight")
	fl.Int64Var(&rp.batch, "prefetch-batch", defaultPrefetchBatch, "prefetch mode: bytes of trace ranges one request asks for")
	fl.StringVarP(&out, "output", "o", "", "results JSON file")
	return cmd
}

// benchOnce makes one start in a mode.
func benchOnce(cmd *cobra.Command, mode, ref string, args []string, rf registryFlags, probe launch.Probe, timeout time.Duration,
	base replayFlags, cache, warmCache string, proxy *netshape.Proxy) (benchStart, error) {
	bf := backstoreFlags{cacheDir: cache, cacheLimit: "0", stateDir: filepath.Join(filepath.Dir(cache), "state"), idle: 10 * time.Second, attempts: 6}
	rp := base
	rp.policy = "dejavu"
	if mode != "prefetch" && mode != "fifo" {
		rp.trace = "none"
	}
	switch mode {
	case "fifo":
		rp.policy = "fifo"
	case "warm":
		bf.cacheDir = warmCache
		if _, err := os.Stat(warmCache); err != nil {
			// Fill the warm cache once, outside the measurement.
			if err := downloadAll(cmd.Context(), ref, warmCache, rf); err != nil {
				return benchStart{}, err
			}
		}
	}
	dropPageCache()
	proxy.Reset()
	var report prefetch.Report
	var reads atomic.Int64
	rec := trace.NewRecorder()
	start := time.Now()
	if mode == "full" {
		if err := downloadAll(cmd.Context(), ref, cache, rf); err != nil {
			return benchStart{}, err
		}
	}
	if _, err := timedStart(cmd.Context(), io.Discard, cmd.ErrOrStderr(), ref, args, rf, bf, probe, timeout, mountHooks{replay: &rp, report: &report, reads: &reads, opened: func(bs *backstore.Backstore) { rec.Attach(bs) }}, backstore.WithObserver(rec)); err != nil {
		return benchStart{}, err
	}
	s := proxy.Stats()
	st := benchStart{Mode: mode, Seconds: time.Since(start).Seconds(), Requests: s.Requests, Fetched: s.Bytes, ReadBytes: reads.Load(),
		NeededBytes: rec.Trace("", nil, "").Bytes()}
	if mode == "prefetch" || mode == "fifo" {
		st.Prefetch = &report
	}
	// Each cold cache is used once.
	if mode != "warm" {
		os.RemoveAll(cache)
	}
	return st, nil
}

// downloadAll fetches every layer blob whole into the cache, as a pull does.
func downloadAll(ctx context.Context, ref, cache string, rf registryFlags) error {
	ropts, err := rf.options()
	if err != nil {
		return err
	}
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

// physicalLimit sets the bound no start can beat.
func (r *benchResults) physicalLimit(rtt time.Duration) {
	var needed []int64
	for _, s := range r.Starts {
		if s.Mode != "warm" && s.NeededBytes > 0 {
			needed = append(needed, s.NeededBytes)
		}
	}
	if len(needed) == 0 || r.Bandwidth <= 0 {
		return
	}
	slices.Sort(needed)
	r.NeededBytes = needed[len(needed)/2]
	r.PhysicalLimitSeconds = float64(r.NeededBytes)/float64(r.Bandwidth) + rtt.Seconds()
	for _, s := range r.Summary {
		if s.Mode == "warm" {
			r.PhysicalLimitSeconds = max(r.PhysicalLimitSeconds, s.MedianSeconds)
		}
	}
}

func summarizeMode(mode string, starts []benchStart) benchSummary {
	var secs []float64
	var reqs, bytes []int64
	for _, s := range starts {
		if s.Mode == mode {
			secs = append(secs, s.Seconds)
			reqs = append(reqs, s.Requests)
			bytes = append(bytes, s.Fetched)
		}
	}
	slices.Sort(secs)
	slices.Sort(reqs)
	slices.Sort(bytes)
	if len(secs) == 0 {
		return benchSummary{Mode: mode}
	}
	m := len(secs) / 2
	return benchSummary{Mode: mode, MedianSeconds: secs[m], MedianRequests: reqs[m], MedianBytes: bytes[m]}
}

// parseBandwidth reads 100Mbit, 1Gbit, 12MiB (per second) or plain bytes.
func parseBandwidth(s string) (int64, error) {
	l := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(s, "/s"), "ps"))
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e9 / 8}, {"mbit", 1e6 / 8}, {"kbit", 1e3 / 8}} {
		if strings.HasSuffix(l, u.suffix) {
			var v float64
			if _, err := fmt.Sscan(strings.TrimSuffix(l, u.suffix), &v); err != nil || v < 0 {
				return 0, fmt.Errorf("--bandwidth %q: bad number", s)
			}
			return int64(v * u.mult), nil
		}
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, fmt.Errorf("--bandwidth %q: want e.g. 100Mbit or 12MiB", s)
	}
	return n, nil
}
