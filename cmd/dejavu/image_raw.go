package main

import (
	"fmt"
	"log/slog"
	"os"

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

OUT must not exist unless --force is given.`,
		Example: `  dejavu image raw localhost:5000/app:latest app.raw && e2fsck -fn app.raw
  dejavu image raw oci:./layout:amd64-converted hello.raw && debugfs -R 'ls -l /' hello.raw
  dejavu image raw file:lower.commit,upper.commit merged.raw`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[1]
			if _, err := os.Lstat(out); err == nil && !force {
				return fmt.Errorf("%s exists; use --force to replace it", out)
			}
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			d, err := backstore.WriteRaw(cmd.Context(), args[0], out, backstore.WithRefOptions(ropts...), backstore.WithLogger(slog.Default()))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s virtual, %s of data in %d mappings\n", out, humanBytes(d.VirtualSize), humanBytes(d.DataBytes), d.Mappings)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace OUT if it exists")
	return cmd
}
