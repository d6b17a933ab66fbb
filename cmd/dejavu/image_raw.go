package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
)

func newImageRawCmd() *cobra.Command {
	var rf registryFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "raw SRC OUT",
		Short: "Write an image's merged virtual device as a sparse raw file",
		Long: `Raw merges the overlaybd layers of SRC top-down and writes the virtual device
to OUT as a sparse file: only mapped data is written, the rest stays holes. The
result is a plain disk image for e2fsck, debugfs or a loop mount.

OUT is written through a temporary file beside it and a rename, so it appears
only when complete. An existing regular file is replaced only with --force;
anything else at OUT (a device node such as /dev/null, a symbolic link, a
directory, a FIFO) is never replaced.`,
		Example: `  dejavu image raw localhost:5000/app:latest app.raw && e2fsck -fn app.raw
  dejavu image raw oci:./layout:amd64-converted hello.raw && debugfs -R 'ls -l /' hello.raw
  dejavu image raw file:lower.commit,upper.commit merged.raw`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[1]
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			d, err := backstore.WriteRaw(cmd.Context(), args[0], out, force, backstore.WithRefOptions(ropts...), backstore.WithLogger(slog.Default()))
			if err != nil {
				return forceHint(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s virtual, %s of data in %d mappings\n", out, humanBytes(d.VirtualSize), humanBytes(d.DataBytes), d.Mappings)
			return nil
		},
	}
	rf.register(cmd.Flags())
	registerForce(cmd.Flags(), &force)
	return cmd
}
