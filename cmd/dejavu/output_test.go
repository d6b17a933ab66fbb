package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/trace"
)

// outputEnv holds the inputs every file-writing command needs: the
// hello-world image in a registry, a trace of it (attached), and a results
// file of dejavu bench.
type outputEnv struct {
	ref, layout, trace, traceDigest, results string
}

func newOutputEnv(t *testing.T) outputEnv {
	t.Helper()
	e := outputEnv{ref: testreg.Start(t).HelloWorld(t, "hello:obd"), layout: testreg.HelloWorldLayout(t)}
	out, _ := dejavu(t, "image", "inspect", e.ref, "-o", "json")
	var rep backstore.ImageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	tr := &trace.Trace{Image: mustHash(t, rep.Manifest), Workload: "out", Recorder: trace.RecorderBackstore, Runs: 1}
	for _, l := range rep.Layers {
		tr.Layers = append(tr.Layers, mustHash(t, l.Digest))
	}
	tr.Records = []trace.Record{{Layer: len(tr.Layers) - 1, Offset: 0, Length: 4096}}
	dir := t.TempDir()
	e.trace = filepath.Join(dir, "in.djv")
	if err := trace.WriteFile(e.trace, tr); err != nil {
		t.Fatal(err)
	}
	d, _ := dejavu(t, "trace", "attach", e.ref, e.trace)
	e.traceDigest = strings.TrimSpace(d)
	e.results = filepath.Join(dir, "results.json")
	res := `{"image":"x","ready":"exit","rtt":"20ms","runs":1,"starts":[{"mode":"lazy","run":1,"seconds":2},{"mode":"warm","run":1,"seconds":1}]}`
	if err := os.WriteFile(e.results, []byte(res), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// outputCommand is a command that writes the file out. cheap says whether
// it can run to the end in this test (record and bench need whole starts:
// their replacing write is shown by TestTraceCommands and by reports'
// TestWriteFiles).
type outputCommand struct {
	name  string
	args  func(out string) []string
	cheap bool
}

func outputCommands(e outputEnv) []outputCommand {
	return []outputCommand{
		{"image raw", func(o string) []string {
			return []string{"image", "raw", "oci:" + e.layout + ":" + testreg.HelloWorldConverted, o}
		}, true},
		{"trace merge", func(o string) []string { return []string{"trace", "merge", e.trace, e.trace, "--out", o} }, true},
		{"trace pull", func(o string) []string {
			return []string{"trace", "pull", e.ref, "--digest", e.traceDigest, "--out", o}
		}, true},
		{"trace export", func(o string) []string {
			return []string{"trace", "export", e.trace, "--format", "overlaybd", "--image", e.ref, "--out", o}
		}, true},
		{"trace record", func(o string) []string { return []string{"trace", "record", e.ref, "--out", o} }, false},
		{"report", func(o string) []string { return []string{"report", e.results, "-o", "html", "--out", o} }, true},
		{"bench", func(o string) []string { return []string{"bench", e.ref, "--out", o} }, false},
	}
}

// nonRegular makes, in dir, one of each thing an output path must never
// replace: a character device like /dev/null (mknod, root), a FIFO, a
// socket, a directory, and a symbolic link to a file outside dir, which
// is returned too.
func nonRegular(t *testing.T, dir string) (paths map[string]string, outside string) {
	t.Helper()
	outside = filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths = map[string]string{
		"character device": filepath.Join(dir, "null"),
		"FIFO":             filepath.Join(dir, "fifo"),
		"socket":           filepath.Join(dir, "sock"),
		"directory":        filepath.Join(dir, "dir"),
		"symbolic link":    filepath.Join(dir, "link"),
	}
	if err := unix.Mknod(paths["character device"], unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	if err := unix.Mkfifo(paths["FIFO"], 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", paths["socket"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := os.Mkdir(paths["directory"], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, paths["symbolic link"]); err != nil {
		t.Fatal(err)
	}
	return paths, outside
}

// TestOutputsNeverReplaceNonRegular: no command that writes a file
// replaces, or writes into, a device node, a FIFO, a socket, a directory
// or a symbolic link, with or without --force; the error names the path
// and what is there, and no temporary file is left.
func TestOutputsNeverReplaceNonRegular(t *testing.T) {
	testenv.RequireRoot(t)
	e := newOutputEnv(t)
	for _, c := range outputCommands(e) {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			for _, force := range []bool{false, true} {
				dir := t.TempDir()
				paths, outside := nonRegular(t, dir)
				for kind, p := range paths {
					before, err := os.Lstat(p)
					if err != nil {
						t.Fatal(err)
					}
					args := c.args(p)
					if force {
						args = append(args, "--force")
					}
					err = dejavuErr(t, args...)
					if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, kind) || !strings.Contains(msg, "refusing to replace") {
						t.Errorf("%s over a %s (force %v): %q, want a refusal naming the path and the %s", c.name, kind, force, msg, kind)
					}
					after, err := os.Lstat(p)
					if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
						t.Errorf("%s over a %s (force %v): it changed (%v)", c.name, kind, force, err)
					}
				}
				var st unix.Stat_t
				if err := unix.Lstat(paths["character device"], &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
					t.Errorf("the device node changed: %v, mode %o", err, st.Mode)
				}
				if b, err := os.ReadFile(outside); err != nil || string(b) != "outside" {
					t.Errorf("the symbolic link's target holds %q (%v)", b, err)
				}
				if ents, _ := os.ReadDir(paths["directory"]); len(ents) != 0 {
					t.Errorf("the directory gained %d entries", len(ents))
				}
				noTempFiles(t, dir)
			}
		})
	}
}

// TestOutputsReplaceRegularOnlyWithForce: an existing regular file is
// refused without --force (left as it was, the error says how to replace
// it) and replaced with it, the same on every command.
func TestOutputsReplaceRegularOnlyWithForce(t *testing.T) {
	e := newOutputEnv(t)
	for _, c := range outputCommands(e) {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "out")
			if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := dejavuErr(t, c.args(p)...)
			if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, "--force") {
				t.Errorf("%s over a regular file: %q, want the path and --force", c.name, msg)
			}
			if b := head(t, p); string(b) != "old" {
				t.Errorf("%s without --force changed the file", c.name)
			}
			noTempFiles(t, dir)
			if !c.cheap {
				return
			}
			dejavu(t, append(c.args(p), "--force")...)
			// The raw image is sparse and 64 GiB: look at its start only.
			if b := head(t, p); len(b) == 0 || string(b) == "old" {
				t.Errorf("%s --force did not replace the file (it starts %q)", c.name, b)
			}
			noTempFiles(t, dir)
			// A new file needs no --force.
			fresh := filepath.Join(dir, "fresh")
			dejavu(t, c.args(fresh)...)
			if fi, err := os.Lstat(fresh); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("%s to a new path: %v", c.name, err)
			}
			noTempFiles(t, dir)
		})
	}
}

// noTempFiles fails if a temporary output file is left in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") || strings.HasSuffix(e.Name(), ".partial") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// head returns the first bytes of the file at p.
func head(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 16)
	n, _ := f.Read(b)
	return b[:n]
}
