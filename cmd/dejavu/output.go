package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/pflag"
)

// forceUsage is the one description of --force on every command that
// writes a file, since the flag means the same everywhere.
const forceUsage = "replace the output file if it exists and is a regular file (anything else, such as a device node, a symbolic link or a directory, is never replaced)"

// outputHelp is the paragraph of a command's help about its output file,
// named name in its usage line.
func outputHelp(name string) string {
	return name + ` is written through a temporary file beside it and a rename. An existing
regular file is replaced only with --force; anything else at ` + name + ` (a device
node, a symbolic link, a directory, a FIFO) is never replaced.`
}

// registerForce adds --force/-f for the output files of a command.
func registerForce(fs *pflag.FlagSet, force *bool) {
	fs.BoolVarP(force, "force", "f", false, forceUsage)
}

// forceHint says how to replace an existing output file, which only the
// CLI can name.
func forceHint(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w; use --force to replace it", err)
	}
	return err
}
