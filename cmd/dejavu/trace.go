package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/trace"
)

func newTraceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Record, merge, inspect and attach start-up traces",
		Long: `A trace says which byte ranges of which layer blobs a program read while it
started, and when. Record one in staging, attach it to the image in CI (the
image digest does not change), and cold starts prefetch exactly that.`,
	}
	cmd.AddCommand(newTraceRecordCmd(), newTraceMergeCmd(), newTraceInspectCmd(), newTraceAttachCmd(),
		newTraceLsCmd(), newTracePullCmd(), newTraceExportCmd())
	return cmd
}

func newTraceMergeCmd() *cobra.Command {
	var out string
	var minRuns int
	cmd := &cobra.Command{
		Use:   "merge FILE... -o OUT",
		Short: "Merge traces of the same workload and image",
		Long: `Merge keeps the byte ranges read in at least --min-runs of the traces; the
earliest first access of a range wins.`,
		Example: `  dejavu trace merge run1.djv run2.djv run3.djv --min-runs 2 -o web.djv`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("-o OUT is required")
			}
			var ts []*trace.Trace
			for _, a := range args {
				t, err := trace.ReadFile(a)
				if err != nil {
					return err
				}
				ts = append(ts, t)
			}
			m, err := trace.Merge(ts, minRuns)
			if err != nil {
				return err
			}
			return trace.WriteFile(out, m)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "merged trace file")
	cmd.Flags().IntVar(&minRuns, "min-runs", 1, "keep ranges seen in at least this many traces")
	return cmd
}

type traceSummary struct {
	Image    string         `json:"image"`
	Layers   []string       `json:"layers"`
	Workload string         `json:"workload"`
	Command  []string       `json:"command,omitempty"`
	Recorder string         `json:"recorder"`
	Runs     int            `json:"runs"`
	Tool     string         `json:"tool,omitempty"`
	Created  time.Time      `json:"created"`
	Records  int            `json:"records"`
	Bytes    int64          `json:"bytes"`
	Span     string         `json:"span"`
	PerLayer []int64        `json:"bytesPerLayer"`
	Largest  []trace.Record `json:"largest"`
}

func summarize(t *trace.Trace) traceSummary {
	s := traceSummary{Image: t.Image.String(), Workload: t.Workload, Command: t.Command, Recorder: t.Recorder, Runs: t.Runs, Tool: t.Tool,
		Created: t.Created, Records: len(t.Records), Bytes: t.Bytes(), Span: t.Span().String(), PerLayer: make([]int64, len(t.Layers))}
	for _, l := range t.Layers {
		s.Layers = append(s.Layers, l.String())
	}
	for _, r := range t.Records {
		s.PerLayer[r.Layer] += r.Length
	}
	big := slices.Clone(t.Records)
	slices.SortFunc(big, func(a, b trace.Record) int { return int(b.Length - a.Length) })
	s.Largest = big[:min(10, len(big))]
	return s
}

func newTraceInspectCmd() *cobra.Command {
	var rf registryFlags
	var output, digest, workload string
	cmd := &cobra.Command{
		Use:   "inspect FILE|REF",
		Short: "Show what a trace holds",
		Example: `  dejavu trace inspect web.djv
  dejavu trace inspect localhost:5000/app:latest --workload web -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *trace.Trace
			if _, err := os.Stat(args[0]); err == nil {
				if t, err = trace.ReadFile(args[0]); err != nil {
					return err
				}
			} else {
				ref, ropts, err := traceRef(args[0], rf)
				if err != nil {
					return err
				}
				if t, _, err = trace.Pull(cmd.Context(), ref, trace.WithDigest(digest), trace.WithWorkload(workload), trace.WithPullRefOptions(ropts...)); err != nil {
					return err
				}
			}
			s := summarize(t)
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			case "table":
				return printTraceSummary(cmd.OutOrStdout(), s)
			}
			return fmt.Errorf("--output %q: want table or json", output)
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().StringVar(&digest, "digest", "", "for REF: the trace artifact digest")
	cmd.Flags().StringVar(&workload, "workload", "", "for REF: the workload")
	return cmd
}

func printTraceSummary(w io.Writer, s traceSummary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\t%s\n", s.Workload)
	fmt.Fprintf(tw, "image\t%s\n", s.Image)
	fmt.Fprintf(tw, "recorder\t%s, %d run(s), %s\n", s.Recorder, s.Runs, s.Created.Format(time.RFC3339))
	fmt.Fprintf(tw, "records\t%d\n", s.Records)
	fmt.Fprintf(tw, "bytes\t%d (%s)\n", s.Bytes, humanBytes(s.Bytes))
	fmt.Fprintf(tw, "time span\t%s\n", s.Span)
	for i, l := range s.Layers {
		fmt.Fprintf(tw, "layer %d\t%s: %s\n", i, l, humanBytes(s.PerLayer[i]))
	}
	fmt.Fprintf(tw, "largest ranges\t\n")
	for _, r := range s.Largest {
		fmt.Fprintf(tw, "  layer %d\t%d+%d (%s) first at %s\n", r.Layer, r.Offset, r.Length, humanBytes(r.Length), r.First)
	}
	return tw.Flush()
}

// traceRef parses a registry reference for the trace commands.
func traceRef(s string, rf registryFlags) (imageref.Ref, []imageref.Option, error) {
	ref, err := imageref.Parse(s)
	if err != nil {
		return ref, nil, err
	}
	if ref.Kind != imageref.KindRegistry {
		return ref, nil, fmt.Errorf("%s: traces are attached to images in a registry", s)
	}
	opts, err := rf.options()
	return ref, opts, err
}

func newTraceAttachCmd() *cobra.Command {
	var rf registryFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "attach REF FILE",
		Short: "Attach a trace to an image as an OCI referrer artifact",
		Long: `Attach pushes the trace as an OCI artifact (artifactType
application/vnd.dejavu.trace.v1) whose subject is the image at REF, through
the referrers API or, on registries without it, the fallback tag
sha256-<hex>. The image and its digest are unchanged. It prints the
artifact's digest, which a deployment can pin.

A trace recorded on another image is refused, naming the first layer that
differs; --force keeps the records of the layers the image has.`,
		Example: `  dejavu trace attach localhost:5000/app:latest web.djv`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, ropts, err := traceRef(args[0], rf)
			if err != nil {
				return err
			}
			t, err := trace.ReadFile(args[1])
			if err != nil {
				return err
			}
			d, err := trace.Attach(cmd.Context(), ref, t, trace.WithForce(force), trace.WithRefOptions(ropts...))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().BoolVar(&force, "force", false, "attach to an image whose layers only partly match, keeping the matching ones")
	return cmd
}

func newTraceLsCmd() *cobra.Command {
	var rf registryFlags
	var output string
	cmd := &cobra.Command{
		Use:     "ls REF",
		Short:   "List the traces attached to an image",
		Example: `  dejavu trace ls localhost:5000/app:latest`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, ropts, err := traceRef(args[0], rf)
			if err != nil {
				return err
			}
			infos, err := trace.List(cmd.Context(), ref, ropts...)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(infos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DIGEST\tWORKLOAD\tRECORDS\tBYTES\tCREATED")
			for _, in := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", in.Digest, in.Workload, in.Records, humanBytes(in.Bytes), in.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newTracePullCmd() *cobra.Command {
	var rf registryFlags
	var out, digest, workload string
	cmd := &cobra.Command{
		Use:   "pull REF -o FILE",
		Short: "Fetch an attached trace",
		Example: `  dejavu trace pull localhost:5000/app:latest --workload web -o web.djv
  dejavu trace pull localhost:5000/app:latest --digest sha256:... -o pinned.djv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("-o FILE is required")
			}
			ref, ropts, err := traceRef(args[0], rf)
			if err != nil {
				return err
			}
			t, d, err := trace.Pull(cmd.Context(), ref, trace.WithDigest(digest), trace.WithWorkload(workload), trace.WithPullRefOptions(ropts...))
			if err != nil {
				return err
			}
			if err := trace.WriteFile(out, t); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&out, "output", "o", "", "trace file to write")
	cmd.Flags().StringVar(&digest, "digest", "", "the trace artifact digest")
	cmd.Flags().StringVar(&workload, "workload", "", "the newest trace of this workload")
	return cmd
}

func newTraceExportCmd() *cobra.Command {
	var rf registryFlags
	var out, format, image string
	cmd := &cobra.Command{
		Use:   "export FILE --format overlaybd --image REF -o OUT",
		Short: "Export a trace to overlaybd's own trace file format",
		Long: `Export writes the trace in the format of overlaybd's recordTracePath, for the
unmodified overlaybd: ranges in each layer's uncompressed file, layer 0 the
bottom. Mapping blob ranges to those needs the layers' indexes, read from the
image (--image, the image the trace was recorded on; only headers and indexes
are fetched).`,
		Example: `  dejavu trace export web.djv --format overlaybd --image localhost:5000/app:latest -o trace`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "overlaybd" {
				return fmt.Errorf("--format %q: only overlaybd is supported", format)
			}
			if out == "" || image == "" {
				return errors.New("-o OUT and --image REF are required")
			}
			t, err := trace.ReadFile(args[0])
			if err != nil {
				return err
			}
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			return trace.ExportImage(cmd.Context(), t, image, out, backstore.WithRefOptions(ropts...))
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write")
	cmd.Flags().StringVar(&format, "format", "overlaybd", "export format (overlaybd)")
	cmd.Flags().StringVar(&image, "image", "", "the image the trace was recorded on")
	return cmd
}
