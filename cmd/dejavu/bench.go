package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/experiment"
	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/launch/timed"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/reports"
)

func newBenchCmd() *cobra.Command {
	var rf registryFlags
	var ready, modes, out, bandwidth, runtime, traceSrc, workload, profile string
	var runs, workers int
	var force bool
	var batch int64
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
  local     the same ext4 from a local file on a loop device, without dejavu
            (page cache dropped): what FUSE, the loop device over it and
            decompression cost a warm start

The link is a --profile (cross-region: 20ms, 100 Mbit/s, the default; slow:
50ms, 25 Mbit/s; same-region: 2ms, 1 Gbit/s) or --rtt and --bandwidth.

Before every cold start the cache is empty and the page cache dropped. For
each start it records the time from mount start to ready, registry requests
and bytes, the bytes the program read, and the prefetch outcomes, and writes
them with per-mode medians as JSON. The registry must be reachable over plain
HTTP (a local one); the shaping proxy sits on loopback. Needs root.

With --runtime containerd, each start goes through a containerd of its own
(the machine's containerd and runc) with the dejavu snapshotter: a cold start
is "dejavu image pull" (manifest and config only) plus "ctr run --rm", timed
together; a warm one finds the image pulled and its bytes cached.

With --out, the results JSON and the HTML report beside it are checked before
the first start and each written through a temporary file and a rename. An
existing regular file is replaced only with --force; anything else there (a
device node, a symbolic link, a directory, a FIFO) is never replaced.`,
		Example: `  dejavu bench localhost:5000/py:latest --modes full,lazy,prefetch,fifo,warm --runs 5 --profile cross-region --out out/bench/results.json
  dejavu bench localhost:5000/py:latest --profile slow --modes lazy,prefetch,fifo,warm,local --runs 5
  dejavu bench localhost:5000/py:latest --rtt 10ms --bandwidth 50Mbit --modes lazy,prefetch
  dejavu bench localhost:5000/py:latest --runtime containerd --modes lazy,prefetch,warm --runs 3 --out out/bench/results-containerd.json -- python3 -c "import numpy"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "" {
				if _, err := reports.CheckFiles(out, force); err != nil {
					return forceHint(err)
				}
			}
			probe, err := launch.ParseProbe(ready)
			if err != nil {
				return err
			}
			bps, err := parseBandwidth(bandwidth)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("rtt") && !cmd.Flags().Changed("bandwidth") {
				p, err := experiment.ProfileNamed(profile)
				if err != nil {
					return err
				}
				rtt, bps = p.RTT, p.Bandwidth
			} else {
				profile = ""
			}
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			rt, err := reports.ParseRuntime(runtime)
			if err != nil {
				return err
			}
			ms, err := experiment.ParseModes(rt, modes)
			if err != nil {
				return err
			}
			res, err := experiment.Run(cmd.Context(), experiment.Experiment{
				Ref:        args[0],
				Program:    timed.Program{Args: args[1:], Ready: probe, Timeout: timeout, Stderr: cmd.ErrOrStderr()},
				ReadySpec:  ready,
				Modes:      ms,
				Runs:       runs,
				RTT:        rtt,
				Bandwidth:  bps,
				Profile:    profile,
				Runtime:    rt,
				Trace:      traceSrc,
				Workload:   workload,
				Workers:    workers,
				Batch:      batch,
				RefOptions: ropts,
				Progress:   cmd.ErrOrStderr(),
				Log:        slog.Default(),
			})
			if err != nil {
				return err
			}
			if out != "" {
				html, err := reports.WriteFiles(out, res, force)
				if err != nil {
					return forceHint(err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s and %s\n", out, html)
			}
			return reports.Table(cmd.OutOrStdout(), res, false)
		},
	}
	rf.register(cmd.Flags())
	fl := cmd.Flags()
	fl.StringVar(&modes, "modes", "full,lazy,prefetch,fifo,warm", "modes to compare (with --runtime containerd: lazy, prefetch, warm)")
	fl.StringVar(&runtime, "runtime", "dejavu", "how the workload starts: dejavu (mount and start it here), or containerd (pull with dejavu image pull and ctr run on the dejavu snapshotter, with Debian's containerd and runc)")
	fl.IntVar(&runs, "runs", 5, "starts per mode")
	fl.StringVar(&profile, "profile", "cross-region", "link to the registry: cross-region (20ms, 100 Mbit/s), slow (50ms, 25 Mbit/s) or same-region (2ms, 1 Gbit/s)")
	fl.DurationVar(&rtt, "rtt", 20*time.Millisecond, "round trip to the registry (instead of --profile)")
	fl.StringVar(&bandwidth, "bandwidth", "100Mbit", "link bandwidth, e.g. 100Mbit, 12MiB; 0: unlimited (instead of --profile)")
	fl.StringVar(&ready, "ready", "exit", "readiness probe: exit, tcp:PORT, http:URL or cmd:COMMAND")
	fl.DurationVar(&timeout, "timeout", 10*time.Minute, "give up on a start not ready within this")
	fl.StringVar(&traceSrc, "trace", "auto", "trace for prefetch and fifo: auto, FILE or sha256:DIGEST")
	fl.StringVar(&workload, "workload", "", "with --trace auto: which workload's trace")
	fl.IntVar(&workers, "prefetch-workers", lazymount.DefaultPrefetchWorkers, "prefetch mode: requests the prefetcher keeps in flight")
	fl.Int64Var(&batch, "prefetch-batch", lazymount.DefaultPrefetchBatch, "prefetch mode: bytes of trace ranges one request asks for")
	registerOut(cmd, &out, "results JSON file; the HTML report goes next to it (.html)")
	registerForce(fl, &force)
	cmd.MarkFlagsMutuallyExclusive("profile", "rtt")
	cmd.MarkFlagsMutuallyExclusive("profile", "bandwidth")
	return cmd
}
