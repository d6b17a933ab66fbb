package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/internal/registry"
)

func newRegistryServeCmd() *cobra.Command {
	var addr, dir string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve an OCI registry (referrers API on, data on disk)",
		Long: `Serve runs dejavu's embedded registry: the OCI distribution API with the
referrers API, blobs stored under DIR, and manifest writes journaled under DIR
so that tags, digests and referrers survive a restart. It answers plain HTTP:
bind it to a loopback address. It stops on SIGINT or SIGTERM.`,
		Example: `  dejavu registry serve
  dejavu registry serve --addr 127.0.0.1:5000 --dir /var/lib/dejavu/registry
  dejavu registry serve --addr 127.0.0.1:0   # any free port; the address is printed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := registry.Start(addr, dir, registry.WithLogger(slog.Default()))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving registry on %s (data in %s)\n", s.Addr, dir)
			go func() {
				<-cmd.Context().Done()
				slog.Info("stopping registry")
				s.Close()
			}()
			return s.Wait()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:5000", "address to listen on")
	cmd.Flags().StringVar(&dir, "dir", "registry-data", "directory for blobs and the manifest journal")
	return cmd
}
