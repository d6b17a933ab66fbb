package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "dejavu",
		Short:         "Make lazily loaded overlaybd images start at local-disk speed",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newImageCmd())
	return root
}
