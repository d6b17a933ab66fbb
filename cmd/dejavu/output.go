package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// forceUsage is the one description of --force on every command that
// writes a file, since the flag means the same everywhere.
const forceUsage = "replace the output file if it exists and is a regular file (anything else, such as a device node, a symbolic link or a directory, is never replaced)"

// outputHelp is the paragraph of a command's help about its output file,
// --out name in its usage line.
func outputHelp(name string) string {
	return `--out ` + name + ` is written through a temporary file beside it and a rename. An
existing regular file is replaced only with --force; anything else at ` + name + ` (a
device node, a symbolic link, a directory, a FIFO) is never replaced.`
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

// outDeprecation is the warning for -o/--output given as an output file.
const outDeprecation = "warning: -o/--output FILE is deprecated and will be removed in the next release: use --out FILE (-o will then be the output format, as in image inspect, trace ls and report)\n"

// registerOut adds --out FILE, the output file of a command, and
// -o/--output FILE, its spelling before -o meant the output format on
// every command (kubectl's convention), kept for one release as a hidden
// alias that warns. Giving both is an error, whatever the values, so that
// which one wins need not be learnt.
//
// The alias warns by itself rather than through pflag's MarkDeprecated,
// which names --output even when -o was typed and reaches the user through
// cobra's Print, that is the command's standard output when one is set.
func registerOut(cmd *cobra.Command, out *string, usage string) {
	f := &outFile{dest: out}
	fl := cmd.Flags()
	fl.Var(outValue{f, "--out", nil}, "out", usage)
	fl.VarP(outValue{f, "-o/--output", func() { fmt.Fprint(cmd.ErrOrStderr(), outDeprecation) }}, "output", "o", "deprecated: use --out")
	fl.Lookup("output").Hidden = true
}

// outFile is the output file that --out and its alias -o/--output set.
type outFile struct {
	dest *string
	by   string // the flag that set dest, "" until one did
}

// outValue is one of the two flags that set an outFile.
type outValue struct {
	f    *outFile
	name string
	warn func() // nil for --out
}

func (v outValue) String() string {
	if v.f == nil {
		return ""
	}
	return *v.f.dest
}

// Type is what the help shows as the flag's argument.
func (v outValue) Type() string { return "FILE" }

func (v outValue) Set(s string) error {
	if v.f.by != "" && v.f.by != v.name {
		return errors.New("--out and -o/--output both given: give --out alone")
	}
	if v.warn != nil && v.f.by == "" {
		v.warn()
	}
	v.f.by = v.name
	*v.f.dest = s
	return nil
}

// requireOut is the error of a command run without its output file.
func requireOut(out, name string) error {
	if out == "" {
		return fmt.Errorf("--out %s is required", name)
	}
	return nil
}
