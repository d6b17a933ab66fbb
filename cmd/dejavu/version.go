package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// commit is set at build time by the Makefile with -ldflags
// "-X main.commit=...": go build stamps the commit into the build info only
// in a plain git checkout, not in a git worktree nor with -buildvcs=false.
var commit string

// versionTemplate prints "dejavu VERSION (commit ..., GO)" for --version,
// as the version command does.
const versionTemplate = "{{.Name}} {{.Version}}\n"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the commit it was built from",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), cmd.Root().Name(), versionString())
		},
	}
}

// versionString is the version, the commit and the Go release of this binary.
func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return describeBuild(version, commit, info)
}

// describeBuild says "VERSION (commit REV[, modified], GO)". The commit
// comes from the ldflag or else the VCS stamp that go build puts in the
// build info of a binary built in a git checkout; a binary without either
// (go test, go run of a file) says "unknown".
func describeBuild(version, commit string, info *debug.BuildInfo) string {
	goVersion, modified := runtime.Version(), false
	if info != nil {
		goVersion = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" {
					commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		// go build stamps a version derived from the tag; use it when
		// the Makefile's ldflag did not set one.
		if v := info.Main.Version; version == "dev" && v != "" && v != "(devel)" {
			version = v
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if modified {
		commit += ", modified"
	}
	return fmt.Sprintf("%s (commit %s, %s)", version, commit, goVersion)
}
