package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/netshape"
	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/reports"
	"github.com/dejavu-project/dejavu/trace"
)

func newBenchCmd() *cobra.Command {
	var rf registryFlags
	var ready, modes, out, bandwidth, runtime string
	rp := replayFlags{trace: "auto", workers: lazymount.DefaultPrefetchWorkers, batch: lazymount.DefaultPrefetchBatch}
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
HTTP (a local one); the shaping proxy sits on loopback. Needs root.

With --runtime containerd, each start goes through a containerd of its own
(the machine's containerd and runc) with the dejavu snapshotter: a cold start
is "dejavu image pull" (manifest and config only) plus "ctr run --rm", timed
together; a warm one finds the image pulled and its bytes cached.`,
		Example: `  dejavu bench localhost:5000/py:latest --modes full,lazy,prefetch,fifo,warm --runs 5 --rtt 20ms --bandwidth 100Mbit -o out/bench/results.json
  dejavu bench localhost:5000/py:latest --runtime containerd --modes lazy,prefetch,warm --runs 3 -o out/bench/results-containerd.json -- python3 -c "import numpy"`,
		Args: cobra.MinimumNArgs(1),
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
			valid := []string{"full", "lazy", "prefetch", "fifo", "warm"}
			switch runtime {
			case "dejavu":
			case "containerd":
				valid = containerdModes
				if ready != "exit" {
					return fmt.Errorf("--runtime containerd: only --ready exit (ctr run waits for the container to exit)")
				}
			default:
				return fmt.Errorf("--runtime %q: want dejavu or containerd", runtime)
			}
			for _, m := range ms {
				if !slices.Contains(valid, m) {
					return fmt.Errorf("--modes: mode %q: want some of %s with --runtime %s", m, strings.Join(valid, ","), runtime)
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
			res := reports.Results{Image: args[0], Command: args[1:], Ready: ready, RTT: rtt.String(), Bandwidth: bps, Runs: runs}
			warmCache := filepath.Join(work, "warm-cache")
			var ctd *containerdBench
			if runtime == "containerd" {
				if ctd, err = startContainerdBench(cmd.Context(), rf, rp); err != nil {
					return err
				}
				defer ctd.Close()
				res.Command = append([]string{"(containerd)"}, res.Command...)
			}
			for run := 1; run <= runs; run++ {
				for k := range ms {
					// Rotate the order so that no mode always follows another.
					mode := ms[(k+run-1)%len(ms)]
					var st reports.Start
					if ctd != nil {
						st, err = ctd.once(cmd.Context(), mode, shaped, args[1:], proxy)
					} else {
						st, err = benchOnce(cmd, mode, shaped, args[1:], rf, probe, timeout, rp, filepath.Join(work, fmt.Sprintf("cache-%d-%s", run, mode)), warmCache, proxy)
					}
					if err != nil {
						return fmt.Errorf("run %d, %s: %w", run, mode, err)
					}
					st.Run = run
					res.Starts = append(res.Starts, st)
					fmt.Fprintf(cmd.ErrOrStderr(), "run %d %-8s %7.3fs  %5d requests  %s\n", run, mode, st.Seconds, st.Requests, humanBytes(st.Fetched))
				}
			}
			res.Summarize(rtt)
			if out != "" {
				if err := writeResults(out, &res); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s and %s\n", out, htmlPath(out))
			}
			return reports.Table(cmd.OutOrStdout(), &res, false)
		},
	}
	rf.register(cmd.Flags())
	fl := cmd.Flags()
	fl.StringVar(&modes, "modes", "full,lazy,prefetch,fifo,warm", "modes to compare (with --runtime containerd: lazy, prefetch, warm)")
	fl.StringVar(&runtime, "runtime", "dejavu", "how the workload starts: dejavu (mount and start it here), or containerd (pull with dejavu image pull and ctr run on the dejavu snapshotter, with Debian's containerd and runc)")
	fl.IntVar(&runs, "runs", 5, "starts per mode")
	fl.DurationVar(&rtt, "rtt", 20*time.Millisecond, "round trip to the registry")
	fl.StringVar(&bandwidth, "bandwidth", "100Mbit", "link bandwidth (e.g. 100Mbit, 12MiB; 0: unlimited)")
	fl.StringVar(&ready, "ready", "exit", "readiness probe: exit, tcp:PORT, http:URL or cmd:COMMAND")
	fl.DurationVar(&timeout, "timeout", 10*time.Minute, "give up on a start not ready within this")
	fl.StringVar(&rp.trace, "trace", "auto", "trace for prefetch and fifo: auto, FILE or sha256:DIGEST")
	fl.StringVar(&rp.workload, "workload", "", "with --trace auto: which workload's trace")
	fl.IntVar(&rp.workers, "prefetch-workers", lazymount.DefaultPrefetchWorkers, "prefetch mode: requests the prefetcher keeps in flight")
	fl.Int64Var(&rp.batch, "prefetch-batch", lazymount.DefaultPrefetchBatch, "prefetch mode: bytes of trace ranges one request asks for")
	fl.StringVarP(&out, "output", "o", "", "results JSON file; the HTML report goes next to it (.html)")
	return cmd
}

// benchOnce makes one start in a mode.
func benchOnce(cmd *cobra.Command, mode, ref string, args []string, rf registryFlags, probe launch.Probe, timeout time.Duration,
	base replayFlags, cache, warmCache string, proxy *netshape.Proxy) (reports.Start, error) {
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
			fmt.Fprintln(cmd.ErrOrStderr(), "filling the warm cache: the whole image, once, through the shaped link (not timed)")
			if err := downloadAll(cmd.Context(), ref, warmCache, rf); err != nil {
				return reports.Start{}, err
			}
		}
	}
	dropPageCache()
	proxy.Reset()
	var report prefetch.Report
	var reads atomic.Int64
	rec := trace.NewRecorder()
	tl := &timeline{}
	start := time.Now()
	if mode == "full" {
		if err := downloadAll(cmd.Context(), ref, cache, rf); err != nil {
			return reports.Start{}, err
		}
	}
	if _, err := timedStart(cmd.Context(), io.Discard, cmd.ErrOrStderr(), ref, args, rf, bf, probe, timeout, mountHooks{replay: &rp, report: &report, reads: &reads, opened: func(bs *backstore.Backstore) { rec.Attach(bs) }}, backstore.WithObserver(rec), backstore.WithObserver(tl)); err != nil {
		return reports.Start{}, err
	}
	s := proxy.Stats()
	st := reports.Start{Mode: mode, Timeline: tl.since(start), Seconds: time.Since(start).Seconds(), Requests: s.Requests, Fetched: s.Bytes, ReadBytes: reads.Load(),
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
func (t *timeline) since(start time.Time) []reports.Fetch {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]reports.Fetch, 0, len(t.fetches))
	for _, f := range t.fetches {
		out = append(out, reports.Fetch{At: f.Start.Sub(start).Seconds(), Took: f.Latency.Seconds(), Cause: f.Cause.String(),
			Bytes: f.Length, Ranges: max(f.Ranges, 1)})
	}
	return out
}

// writeResults writes the results JSON and the HTML report beside it.
func writeResults(out string, res *reports.Results) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	var j, h bytes.Buffer
	if err := reports.WriteJSON(&j, res); err != nil {
		return err
	}
	if err := reports.HTML(&h, res); err != nil {
		return err
	}
	if err := os.WriteFile(out, j.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(htmlPath(out), h.Bytes(), 0o644)
}

// htmlPath is where the HTML report of a results file goes.
func htmlPath(out string) string {
	return strings.TrimSuffix(out, filepath.Ext(out)) + ".html"
}
