package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

var versionLine = regexp.MustCompile(`^dejavu \S+ \(commit \S+(, modified)?, go[0-9.]+\S*\)\n$`)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _ := dejavu(t, args...)
		if !versionLine.MatchString(out) {
			t.Errorf("dejavu %s printed %q, want %s", args[0], out, versionLine)
		}
	}
	if err := dejavuErr(t, "version", "extra"); !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("dejavu version extra: %v", err)
	}
}

func TestDescribeBuild(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v0.3.1-0.20260101000000-abc1234abcde+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc1234abcdef"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		version, commit string
		info            *debug.BuildInfo
		want            string
	}{
		{"v0.3.0-12-gabc1234", "", stamped, "v0.3.0-12-gabc1234 (commit abc1234abcdef, modified, go1.26.1)"},
		{"v0.3.0", "fedcba9", stamped, "v0.3.0 (commit fedcba9, modified, go1.26.1)"},
		{"dev", "", stamped, "v0.3.1-0.20260101000000-abc1234abcde+dirty (commit abc1234abcdef, modified, go1.26.1)"},
		{"dev", "", &debug.BuildInfo{GoVersion: "go1.26.2", Main: debug.Module{Version: "(devel)"}}, "dev (commit unknown, go1.26.2)"},
		{"dev", "", nil, "dev (commit unknown, " + runtime.Version() + ")"},
	} {
		if got := describeBuild(tc.version, tc.commit, tc.info); got != tc.want {
			t.Errorf("describeBuild(%q, %q) = %q, want %q", tc.version, tc.commit, got, tc.want)
		}
	}
}

// TestVersionLdflags builds the command as the Makefile does: the variables
// its -X flags name must exist, or the flags silently do nothing.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "dejavu")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-1-g0123abc -X main.commit=0123abc0123abc", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "dejavu v9.8.7-1-g0123abc (commit 0123abc0123abc"; !strings.HasPrefix(string(out), want) {
		t.Errorf("built with ldflags, version printed %q, want %q...", out, want)
	}
}
