package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// run runs the CLI in-process and returns its stdout and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(new(bytes.Buffer))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// groups are the commands that only group subcommands, found in the tree so
// that a group added later is covered too.
func groups(t *testing.T) []string {
	var names []string
	for _, c := range newRootCmd().Commands() {
		if c.HasSubCommands() {
			names = append(names, c.Name())
		}
	}
	for _, want := range []string{"image", "registry", "trace"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Fatalf("no group %q among %v", want, names)
		}
	}
	return names
}

func TestUnknownSubcommand(t *testing.T) {
	for _, g := range groups(t) {
		err := dejavuErr(t, g, "no-such-command")
		if want := `unknown command "no-such-command" for "dejavu ` + g + `"`; err.Error() != want {
			t.Errorf("dejavu %s no-such-command: %q, want %q", g, err, want)
		}
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"trace", "atach"}},
		{[]string{"image", "index"}},
		{[]string{"trace", "atach", "localhost:5000/app:latest", "web.djv"}},
	} {
		err := dejavuErr(t, tc.args...)
		if !strings.HasPrefix(err.Error(), `unknown command "`+tc.args[1]+`" for "dejavu `+tc.args[0]+`"`) {
			t.Errorf("dejavu %s: %v", strings.Join(tc.args, " "), err)
		}
	}
}

func TestUnknownSubcommandSuggestion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trace", "atach"}, "unknown command \"atach\" for \"dejavu trace\"\n\nDid you mean this?\n\tattach"},
		{[]string{"trace", "lst"}, "Did you mean this?\n\tls"},
		{[]string{"image", "covert"}, "Did you mean this?\n\tconvert"},
		{[]string{"registry", "serv"}, "Did you mean this?\n\tserve"},
		{[]string{"trac"}, "unknown command \"trac\" for \"dejavu\"\n\nDid you mean this?\n\ttrace"},
	} {
		err := dejavuErr(t, tc.args...)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dejavu %s: %q, want it to contain %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	// A word far from every subcommand gets no suggestion.
	if err := dejavuErr(t, "image", "index"); strings.Contains(err.Error(), "Did you mean") {
		t.Errorf("dejavu image index: %q suggests something", err)
	}
}

func TestUnknownTopLevelCommand(t *testing.T) {
	err := dejavuErr(t, "frobnicate")
	if want := `unknown command "frobnicate" for "dejavu"`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("dejavu frobnicate: %q, want %q", err, want)
	}
}

// TestUnknownCommandExitCode runs the command as a process of its own: a
// typo must fail a script.
func TestUnknownCommandExitCode(t *testing.T) {
	for _, args := range [][]string{{"trace", "atach"}, {"image", "index"}, {"frobnicate"}} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], args...)
		cmd.Env = append(os.Environ(), "DEJAVU_TEST_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
			t.Errorf("dejavu %s: exit code %d (%v), want 1", strings.Join(args, " "), code, err)
		}
		if want := "dejavu: unknown command \"" + args[len(args)-1] + "\""; !strings.HasPrefix(stderr.String(), want) {
			t.Errorf("dejavu %s printed %q, want %q...", strings.Join(args, " "), stderr.String(), want)
		}
	}
}

func TestGroupHelp(t *testing.T) {
	for _, g := range groups(t) {
		out, err := run(t, g)
		if err != nil {
			t.Errorf("dejavu %s: %v, want its help", g, err)
			continue
		}
		if !strings.Contains(out, "Available Commands:") || !strings.Contains(out, "dejavu "+g+" [command]") {
			t.Errorf("dejavu %s printed no help:\n%s", g, out)
		}
	}
	out, err := run(t)
	if err != nil || !strings.Contains(out, "Available Commands:") {
		t.Errorf("dejavu: %v\n%s", err, out)
	}
}
