package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:   "dejavu",
		Short: "Make lazily loaded overlaybd images start at local-disk speed",
		Long: `dejavu builds and inspects overlaybd images (the lazy, block-based image format
of DADI), records which bytes of an image a program reads while it starts, and
prefetches exactly those bytes at the next cold start.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.SetVersionTemplate(versionTemplate)
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(newImageCmd(), newMountCmd(), newUmountCmd(), newRunCmd(), newTraceCmd(), newBenchCmd(), newReportCmd(), newRegistryCmd(), newSnapshotterCmd(), newVersionCmd())
	rejectUnknownSubcommands(root)
	return root
}

// rejectUnknownSubcommands makes every command below root that only groups
// subcommands fail on an argument that names none of them. Cobra checks
// this for the root alone; a group it would answer with its help and exit
// 0, so that "dejavu trace atach" in a script would pass.
func rejectUnknownSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		rejectUnknownSubcommands(c)
		if !c.HasSubCommands() || c.Runnable() {
			continue
		}
		c.Args = unknownSubcommand
		c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
}

// unknownSubcommand fails as cobra does for the root: the command path and,
// for a near miss, the subcommands meant.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default for the root
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return errors.New(msg)
}
