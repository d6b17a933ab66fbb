package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/trace"
)

// TestTraceCommands: record a real start of the hello-world image, inspect
// it, attach it, list and pull it back, and export it for overlaybd.
func TestTraceCommands(t *testing.T) {
	testenv.RequireLoop(t)
	testenv.RequireFUSE(t)
	ref := testreg.Start(t).HelloWorld(t, "hello:obd")
	dir := t.TempDir()
	file := filepath.Join(dir, "hello.djv")
	state := t.TempDir()
	// An older trace is there: --force replaces it (the output tests
	// show the refusal without it; this is the replacing write of record).
	if err := os.WriteFile(file, []byte("older"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut := dejavu(t, "trace", "record", ref, "--runs", "2", "--workload", "hello", "--force", "--out", file, "--state-dir", state)
	if !strings.Contains(errOut, "run 2: ready in") {
		t.Fatalf("record:\n%s", errOut)
	}
	out, _ := dejavu(t, "trace", "inspect", file, "-o", "json")
	var s trace.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Workload != "hello" || s.Runs != 2 || s.Records == 0 || s.Bytes == 0 || s.Image != "sha256:42caa56a19e082b872d43f645bb392e25c9e78bce429755bd709fac598265f88" {
		t.Fatalf("inspect: %+v", s)
	}
	digest, _ := dejavu(t, "trace", "attach", ref, file)
	digest = strings.TrimSpace(digest)
	ls, _ := dejavu(t, "trace", "ls", ref)
	if !strings.Contains(ls, digest) || !strings.Contains(ls, "hello") {
		t.Fatalf("ls:\n%s", ls)
	}
	pulled := filepath.Join(dir, "pulled.djv")
	dejavu(t, "trace", "pull", ref, "--digest", digest, "--out", pulled)
	a, _ := os.ReadFile(file)
	b, _ := os.ReadFile(pulled)
	ta, _ := trace.Unmarshal(a)
	tb, err := trace.Unmarshal(b)
	if err != nil || len(ta.Records) != len(tb.Records) || ta.Bytes() != tb.Bytes() {
		t.Fatalf("pulled trace differs: %v", err)
	}
	exported := filepath.Join(dir, "overlaybd.trace")
	dejavu(t, "trace", "export", file, "--format", "overlaybd", "--image", ref, "--out", exported)
	e, _ := os.ReadFile(exported)
	if len(e) < 48 || binary.LittleEndian.Uint32(e) != trace.OverlaybdTraceMagic || int(binary.LittleEndian.Uint64(e[8:])) != len(e)-24 {
		t.Fatalf("exported %d bytes", len(e))
	}
	if err := dejavuErr(t, "trace", "record", ref, "--recorder", "bogus", "--out", file); !strings.Contains(err.Error(), "want backstore or ebpf") {
		t.Fatalf("bad recorder: %v", err)
	}

	// The next release: same layer, another config. Its trace is carried.
	next := nextRelease(t, ref)
	carried, errOut := dejavu(t, "trace", "attach", next, "--from", ref, "--workload", "hello")
	carried = strings.TrimSpace(carried)
	if !strings.HasPrefix(carried, "sha256:") || !strings.Contains(errOut, "carried ") || !strings.Contains(errOut, "in 1 shared layers from sha256:42caa56a") {
		t.Fatalf("attach --from: %q\n%s", carried, errOut)
	}
	ls, _ = dejavu(t, "trace", "ls", next)
	if !strings.Contains(ls, carried) || !strings.Contains(ls, "CARRIED FROM") || !strings.Contains(ls, "sha256:42caa56a19e082b872d43f645bb392e25c9e78bce429755bd709fac598265f88") {
		t.Fatalf("ls of the next release:\n%s", ls)
	}
	for _, bad := range [][]string{{"trace", "attach", next}, {"trace", "attach", next, file, "--from", ref}, {"trace", "attach", next, "--from", ref, "--force"}} {
		if err := dejavuErr(t, bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// nextRelease pushes, beside ref, an image of the same layers with another
// config, and returns its reference.
func nextRelease(t *testing.T, ref string) string {
	t.Helper()
	r, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r.Name)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Env = append(cf.Config.Env, "RELEASE=2")
	next, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	out := r.Name.Context().Tag("next").String()
	n, _ := imageref.Parse(out)
	if err := remote.Write(n.Name, next); err != nil {
		t.Fatal(err)
	}
	return out
}
