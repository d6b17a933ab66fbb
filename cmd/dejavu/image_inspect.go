package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
)

func newImageInspectCmd() *cobra.Command {
	var rf registryFlags
	var output string
	cmd := &cobra.Command{
		Use:   "inspect SRC",
		Short: "Show the overlaybd structure of an image's layers",
		Long: `Inspect opens every layer blob of SRC and reports how it is stored: blob
size, tar wrapper, compression and block size, the LSMT layer's virtual size,
mapping count and mapped and zeroed bytes, and the merged device of the stack.
Layers that are not overlaybd are listed with the reason.

SRC is a registry reference, an OCI layout (oci:DIR[:TAG]) or local layer blob
files, bottom first (file:A,B). Of a registry image only the layers' headers
and indexes are fetched, by range.`,
		Example: `  dejavu image inspect localhost:5000/app:latest
  dejavu image inspect oci:./layout:amd64-converted -o json
  dejavu image inspect file:lower.commit,upper.commit`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: want table or json", output)
			}
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			rep, err := backstore.Inspect(cmd.Context(), args[0], backstore.WithRefOptions(ropts...), backstore.WithLogger(slog.Default()))
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printInspect(cmd.OutOrStdout(), rep)
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func printInspect(w io.Writer, rep *backstore.ImageReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image\t%s\n", rep.Image)
	if rep.Manifest != "" {
		fmt.Fprintf(tw, "manifest\t%s\n", rep.Manifest)
	}
	for _, l := range rep.Layers {
		name := l.Digest
		if name == "" {
			name = l.Path
		}
		fmt.Fprintf(tw, "\nlayer %d\t%s\n", l.Index, name)
		if l.MediaType != "" {
			fmt.Fprintf(tw, "  media type\t%s\n", l.MediaType)
		}
		if l.Layer == nil {
			fmt.Fprintf(tw, "  overlaybd\tno: %s\n", l.Error)
			continue
		}
		r := l.Layer
		fmt.Fprintf(tw, "  blob size\t%d (%s)\n", r.BlobSize, humanBytes(r.BlobSize))
		if r.Tar {
			fmt.Fprintf(tw, "  wrapper\ttar, payload at %d\n", r.PayloadOffset)
		} else {
			fmt.Fprintf(tw, "  wrapper\tnone\n")
		}
		if r.Compression == "none" {
			fmt.Fprintf(tw, "  compression\tnone\n")
		} else {
			fmt.Fprintf(tw, "  compression\t%s, %s blocks (%d blocks)\n", r.Compression, humanBytes(int64(r.BlockSize)), r.Blocks)
		}
		fmt.Fprintf(tw, "  layer size\t%d (%s, uncompressed LSMT file)\n", r.LayerSize, humanBytes(r.LayerSize))
		fmt.Fprintf(tw, "  virtual size\t%d (%s)\n", r.VirtualSize, humanBytes(r.VirtualSize))
		fmt.Fprintf(tw, "  mappings\t%d (+%d padding entries)\n", r.Mappings, r.Padding)
		fmt.Fprintf(tw, "  mapped data\t%d (%s)\n", r.DataBytes, humanBytes(r.DataBytes))
		fmt.Fprintf(tw, "  zeroed\t%d (%s)\n", r.ZeroedBytes, humanBytes(r.ZeroedBytes))
		fmt.Fprintf(tw, "  uuid\t%s (parent %s)\n", r.UUID, r.ParentUUID)
	}
	if d := rep.Device; d != nil {
		fmt.Fprintf(tw, "\ndevice\t%s virtual, %d merged mappings, %s data, %s zeroed\n",
			humanBytes(d.VirtualSize), d.Mappings, humanBytes(d.DataBytes), humanBytes(d.ZeroedBytes))
	}
	return tw.Flush()
}
