package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
}
