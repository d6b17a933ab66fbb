package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/launch/timed"
)

func newRunCmd() *cobra.Command {
	var f *lazyFlags
	cmd := &cobra.Command{
		Use:   "run REF [-- CMD ARGS...]",
		Short: "Mount an image lazily, start its program, and time it until ready",
		Long: `Run mounts REF as "dejavu mount" does, then starts the image's entrypoint and
command (or CMD ARGS) the way a container runtime would: in new mount, PID, UTS
and IPC namespaces, with its root in an overlay of the read-only image and a
fresh writable layer, /proc, /sys and /dev provided, and the image's Env,
WorkingDir and User. The host network is shared. When the readiness probe
passes, it prints the time from the start of the mount to ready, stops the
program and unmounts.

Readiness: exit (the program exits 0; the default), tcp:PORT, http:URL, or
cmd:COMMAND (a host command that exits 0). Needs root.`,
		Example: `  dejavu run localhost:5000/hello:latest
  dejavu run localhost:5000/web:latest --ready http://127.0.0.1:8080/healthz --timeout 60s
  dejavu run localhost:5000/py:latest -- python3 -c "import numpy"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			probe, opts, stop, err := f.startOptions(cmd.Context())
			if err != nil {
				return err
			}
			defer stop()
			st, err := timed.Start(cmd.Context(), args[0], timed.Program{Args: args[1:], Ready: probe, Timeout: f.timeout, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}, opts...)
			if st.Prefetch.Units > 0 {
				logPrefetch(st.Prefetch)
			}
			if err != nil {
				return err
			}
			total, mounted := st.Total, st.Mounted
			fmt.Fprintf(cmd.ErrOrStderr(), "ready in %s (mount %s, program %s)\n",
				total.Round(time.Millisecond), mounted.Round(time.Millisecond), (total - mounted).Round(time.Millisecond))
			return nil
		},
	}
	f = mountFlags(cmd)
	f.registerStart(cmd)
	return cmd
}
