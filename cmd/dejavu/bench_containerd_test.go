package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/internal/bench/containerdenv"
	"github.com/dejavu-project/dejavu/internal/testutil/ctdtest"
)

// TestBenchThroughContainerd: `dejavu bench --runtime containerd` times
// lazy, prefetch and warm starts through containerd and the snapshotter;
// warm starts ask the registry nothing, prefetch starts report outcomes,
// and the bench leaves nothing behind.
func TestBenchThroughContainerd(t *testing.T) {
	ctdtest.Require(t)
	_, _, ref, file := tracedImage(t)
	dejavu(t, "trace", "attach", ref, file)
	out := filepath.Join(t.TempDir(), "results.json")
	table, _ := dejavu(t, "bench", ref, "--runtime", "containerd", "--modes", "lazy,prefetch,warm", "--runs", "1", "--rtt", "5ms", "--bandwidth", "400Mbit", "--out", out)
	res := benchResults(t, out)
	if res.Runtime != "containerd" || len(res.Starts) != 3 {
		t.Fatalf("results: runtime %q, %d starts\n%s", res.Runtime, len(res.Starts), table)
	}
	for _, s := range res.Starts {
		switch {
		case s.Seconds <= 0 || s.ReadBytes == 0:
			t.Errorf("%s: %.3fs, %d bytes read", s.Mode, s.Seconds, s.ReadBytes)
		case s.Mode == "warm" && s.Requests != 0:
			t.Errorf("warm start asked the registry %d times", s.Requests)
		case s.Mode == "prefetch" && (s.Prefetch == nil || s.Prefetch.Units == 0 || s.Prefetch.Hit+s.Prefetch.Partial == 0):
			t.Errorf("prefetch start: report %+v", s.Prefetch)
		case s.Mode == "lazy" && (s.Requests == 0 || s.NeededBytes == 0):
			t.Errorf("lazy start: %d requests, %d bytes needed", s.Requests, s.NeededBytes)
		}
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), "djv-bench-ctd-") {
		t.Fatal("the bench left mounts behind")
	}
	if cg := containerdenv.Cgroups("dejavu-bench"); len(cg) > 0 {
		t.Fatalf("the bench left cgroups: %v", cg)
	}
	t.Logf("\n%s", table)
}
