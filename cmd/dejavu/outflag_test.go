package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// outFileCommands are the commands whose -o/--output used to be the output
// file and is now a deprecated alias of --out.
var outFileCommands = []string{"trace merge", "trace pull", "trace export", "trace record", "bench"}

// withFlag returns args with its --out replaced by flag.
func withFlag(args []string, flag string) []string {
	args = slices.Clone(args)
	args[slices.Index(args, "--out")] = flag
	return args
}

// TestOutFlag: on every command that writes an output file, --out FILE
// writes it without a warning; -o FILE and --output FILE still do, with a
// deprecation warning on stderr (never stdout) that says to use --out; and
// giving both is an error that names them and writes nothing. record and
// bench need whole starts to write: that the alias is their output file is
// shown by their refusal to replace an existing file without --force.
func TestOutFlag(t *testing.T) {
	e := newOutputEnv(t)
	for _, c := range outputCommands(e) {
		if !slices.Contains(outFileCommands, c.name) {
			continue
		}
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			for _, flag := range []string{"--out", "-o", "--output"} {
				dir := t.TempDir()
				p := filepath.Join(dir, "out")
				args := withFlag(c.args(p), flag)
				if !c.cheap {
					if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				stdout, stderr, err := runCLI(t, args...)
				switch {
				case c.cheap && err != nil:
					t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr)
				case c.cheap:
					if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
						t.Errorf("%s did not write %s: %v", strings.Join(args, " "), p, err)
					}
				case err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "--force"):
					t.Errorf("%s over a regular file: %v, want a refusal naming %s and --force", strings.Join(args, " "), err, p)
				}
				warned := strings.Contains(stderr, "deprecated") && strings.Contains(stderr, "use --out FILE")
				if warned != (flag != "--out") {
					t.Errorf("%s: warned %v; stderr:\n%s", strings.Join(args, " "), warned, stderr)
				}
				if strings.Contains(stdout, "deprecated") {
					t.Errorf("%s: the warning went to stdout:\n%s", strings.Join(args, " "), stdout)
				}
			}
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			for _, args := range [][]string{append(c.args(a), "-o", b), append(withFlag(c.args(a), "--output"), "--out", b)} {
				_, _, err := runCLI(t, args...)
				if err == nil || !strings.Contains(err.Error(), "--out and -o/--output both given") {
					t.Errorf("%s: %v, want an error saying both were given", strings.Join(args, " "), err)
				}
				for _, p := range []string{a, b} {
					if _, err := os.Lstat(p); err == nil {
						t.Errorf("%s wrote %s", strings.Join(args, " "), p)
					}
				}
			}
		})
	}
}

// TestOutFlagHelp: the help of those commands shows --out and hides the
// deprecated -o/--output.
func TestOutFlagHelp(t *testing.T) {
	for _, c := range outFileCommands {
		out, _, err := runCLI(t, append(strings.Fields(c), "--help")...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "--out FILE") || strings.Contains(out, "--output") || strings.Contains(out, " -o ") {
			t.Errorf("%s --help:\n%s", c, out)
		}
	}
}

// TestOutFlagDeprecationOnStderr: the dejavu process itself writes the
// warning to its stderr, and nothing to its stdout, for -o FILE.
func TestOutFlagDeprecationOnStderr(t *testing.T) {
	e := newOutputEnv(t)
	p := filepath.Join(t.TempDir(), "merged.djv")
	cmd := exec.Command(os.Args[0], "trace", "merge", e.trace, "-o", p)
	cmd.Env = append(os.Environ(), "DEJAVU_TEST_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "-o/--output FILE is deprecated") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if _, err := os.Stat(p); err != nil {
		t.Error(err)
	}
}

// TestOutputFormatFlag: where -o was the output format it still is.
func TestOutputFormatFlag(t *testing.T) {
	e := newOutputEnv(t)
	for _, args := range [][]string{
		{"image", "inspect", e.ref, "-o", "json"},
		{"trace", "ls", e.ref, "-o", "json"},
		{"trace", "inspect", e.trace, "-o", "json"},
		{"report", e.results, "-o", "json"},
	} {
		out, _ := dejavu(t, args...)
		if !json.Valid([]byte(out)) {
			t.Errorf("%s: not JSON:\n%s", strings.Join(args, " "), out)
		}
	}
}
