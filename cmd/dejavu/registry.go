package main

import "github.com/spf13/cobra"

func newRegistryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run the embedded OCI registry",
	}
	cmd.AddCommand(newRegistryServeCmd())
	return cmd
}
