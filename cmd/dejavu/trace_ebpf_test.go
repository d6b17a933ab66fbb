package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/internal/testutil/busybox"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
	"github.com/dejavu-project/dejavu/launch/timed"
	"github.com/dejavu-project/dejavu/reports"
	"github.com/dejavu-project/dejavu/trace"
)

// overlap returns the bytes both traces cover, and each one's total.
func overlap(a, b *trace.Trace) (inter, sizeA, sizeB int64) {
	a.Normalize()
	b.Normalize()
	for _, x := range a.Records {
		sizeA += x.Length
		for _, y := range b.Records {
			if x.Layer != y.Layer {
				continue
			}
			lo, hi := max(x.Offset, y.Offset), min(x.End(), y.End())
			if hi > lo {
				inter += hi - lo
			}
		}
	}
	return inter, sizeA, b.Bytes()
}

// TestBackstoreAndEBPFAgree records the same workload with the backstore
// hook and with eBPF on the loop device; the traces must cover at least
// 95% of the same bytes.
func TestBackstoreAndEBPFAgree(t *testing.T) {
	_, _, ref := busybox.Image(t)
	dir := t.TempDir()
	traces := map[string]*trace.Trace{}
	for _, rec := range []string{"backstore", "ebpf"} {
		file := filepath.Join(dir, rec+".djv")
		dejavu(t, "trace", "record", ref, "--recorder", rec, "--out", file, "--state-dir", t.TempDir())
		tr, err := trace.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Recorder != rec || len(tr.Records) == 0 {
			t.Fatalf("%s: %+v", rec, tr)
		}
		traces[rec] = tr
	}
	inter, a, b := overlap(traces["backstore"], traces["ebpf"])
	t.Logf("backstore %d bytes, ebpf %d bytes, both %d (%.1f%% / %.1f%%)", a, b, inter, 100*float64(inter)/float64(a), 100*float64(inter)/float64(b))
	if float64(inter) < 0.95*float64(a) || float64(inter) < 0.95*float64(b) {
		t.Fatalf("the recorders agree on %d of %d and %d bytes: under 95%%", inter, a, b)
	}
}

// TestRecordForeignDevice records, with eBPF, a block device dejavu does not
// serve: the image's raw device on a plain loop device, mounted and read.
func TestRecordForeignDevice(t *testing.T) {
	testenv.RequireLoop(t)
	testenv.RequireCommands(t, "mke2fs")
	ref := testreg.Start(t).Ref("bb:v1")
	busybox.Build(t, busybox.Tree(t), ref, v1.Config{})
	raw := filepath.Join(t.TempDir(), "disk.raw")
	dejavu(t, "image", "raw", ref, raw)
	out, err := exec.Command(testenv.LookPath("losetup"), "--find", "--show", "--read-only", raw).Output()
	if err != nil {
		t.Fatal(err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command(testenv.LookPath("losetup"), "-d", loop).Run()
	file := filepath.Join(t.TempDir(), "foreign.djv")
	done := make(chan string, 1)
	go func() {
		_, stderr := dejavu(t, "trace", "record", ref, "--device", loop, "--duration", "2s", "--out", file)
		done <- stderr
	}()
	mnt := t.TempDir()
	if out, err := exec.Command(testenv.LookPath("mount"), "-t", "ext4", "-o", "ro,noload", loop, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	defer exec.Command(testenv.LookPath("umount"), mnt).Run()
	// Read cold, again and again, until the recording window closes: when
	// the program got loaded does not matter then.
	var stderr string
	for stderr == "" {
		timed.DropPageCache()
		if out, err := exec.Command("sh", "-c", "cat "+mnt+"/data/*/* > /dev/null").CombinedOutput(); err != nil {
			t.Fatalf("read: %v\n%s", err, out)
		}
		select {
		case stderr = <-done:
		case <-time.After(100 * time.Millisecond):
		}
	}
	tr, err := trace.ReadFile(file)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if tr.Recorder != trace.RecorderEBPF || len(tr.Records) == 0 || tr.Bytes() < 64<<10 {
		t.Fatalf("foreign device trace: %d records, %d bytes, recorder %s\n%s", len(tr.Records), tr.Bytes(), tr.Recorder, stderr)
	}
	t.Log(strings.TrimSpace(stderr))
}

// TestMountWithPrefetch: a trace recorded on the workload is replayed by a
// cold mount while every file is read and compared with its source; a
// mount stopped in the middle of a replay leaves nothing behind.
func TestMountWithPrefetch(t *testing.T) {
	_, tree, ref, file := tracedImage(t)
	dejavu(t, "trace", "attach", ref, file)

	for _, tc := range []struct{ name, trace string }{{"file", file}, {"auto", "auto"}, {"fifo", file}} {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "mnt")
			args := []string{ref, target, "--cache", t.TempDir(), "--state-dir", t.TempDir(), "--trace", tc.trace}
			if tc.name == "fifo" {
				args = append(args, "--replay-policy", "fifo")
			}
			stop := startMount(t, args...)
			treetest.Compare(t, tree, target)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}

	// Stop in the middle of a replay.
	state := t.TempDir()
	target := filepath.Join(t.TempDir(), "mnt")
	stop := startMount(t, ref, target, "--cache", t.TempDir(), "--state-dir", state, "--trace", file)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), target) || strings.Contains(string(mi), state) {
		t.Fatalf("mounts left after stopping mid-replay:\n%s", mi)
	}
	if left, _ := os.ReadDir(state); len(left) != 0 {
		t.Fatalf("state left: %v", left)
	}
}

// TestBenchModes runs every bench mode twice on a small image behind a
// shaped link and checks the results file: all modes timed, warm and local
// ask the registry nothing, the prefetch modes report outcomes and where
// their time went.
func TestBenchModes(t *testing.T) {
	_, _, ref, file := tracedImage(t)
	dejavu(t, "trace", "attach", ref, file)
	out := filepath.Join(t.TempDir(), "results.json")
	table, _ := dejavu(t, "bench", ref, "--modes", "full,lazy,prefetch,fifo,warm,local", "--runs", "2", "--rtt", "5ms", "--bandwidth", "400Mbit", "--out", out)
	res := benchResults(t, out)
	if len(res.Starts) != 12 || len(res.Summary) != 6 {
		t.Fatalf("results: %d starts, %d summaries\n%s", len(res.Starts), len(res.Summary), table)
	}
	med := map[reports.Mode]reports.ModeSummary{}
	for _, s := range res.Summary {
		med[s.Mode] = s
		if s.MedianSeconds <= 0 {
			t.Errorf("%s: no time", s.Mode)
		}
	}
	for _, m := range []reports.Mode{reports.ModeWarm, reports.ModeLocal} {
		if med[m].MedianRequests != 0 {
			t.Errorf("%s starts asked the registry %d times", m, med[m].MedianRequests)
		}
	}
	if b := med[reports.ModePrefetch].Breakdown; b == nil || b.Head <= 0 || b.Head+b.Transfer+b.Tail > med[reports.ModePrefetch].MaxSeconds+1e-6 {
		t.Errorf("prefetch breakdown %+v", b)
	}
	if res.NeededBytes <= 0 || res.PhysicalLimitSeconds < med["warm"].MedianSeconds {
		t.Errorf("physical limit %.3fs for %d needed bytes (warm %.3fs)", res.PhysicalLimitSeconds, res.NeededBytes, med["warm"].MedianSeconds)
	}
	// The need limit adds the program's own time after its reads: never
	// below the warm start, and made from the warm starts' need curves.
	if res.NeedLimitSeconds < med["warm"].MedianSeconds {
		t.Errorf("need limit %.3fs, warm %.3fs", res.NeedLimitSeconds, med["warm"].MedianSeconds)
	}
	for _, s := range res.Starts {
		if (s.Mode == "prefetch" || s.Mode == "fifo") && (s.Prefetch == nil || s.Prefetch.Units == 0) {
			t.Errorf("%s run %d: no prefetch report", s.Mode, s.Run)
		}
		if (s.Mode == reports.ModeWarm) != (len(s.Need) > 0) {
			t.Errorf("%s run %d: need curve of %d points (warm starts have one, others none)", s.Mode, s.Run, len(s.Need))
		}
		if s.ReadBytes == 0 && s.Mode != reports.ModeLocal {
			t.Errorf("%s run %d: the program read nothing", s.Mode, s.Run)
		}
	}
	t.Logf("\n%s", table)
}

// benchResults reads the results file dejavu bench wrote.
func benchResults(t *testing.T, path string) *reports.Results {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := reports.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A link profile sets the link and is named in the results; it cannot be
// mixed with --rtt or --bandwidth.
func TestBenchProfile(t *testing.T) {
	_, _, ref, _ := tracedImage(t)
	out := filepath.Join(t.TempDir(), "results.json")
	dejavu(t, "bench", ref, "--profile", "same-region", "--modes", "lazy", "--runs", "1", "--out", out)
	res := benchResults(t, out)
	if res.Profile != "same-region" || res.RTT != "2ms" || res.Bandwidth != 125000000 {
		t.Errorf("results of the same-region profile: profile %q, rtt %s, %d B/s", res.Profile, res.RTT, res.Bandwidth)
	}
	for _, args := range [][]string{{"--profile", "slow", "--rtt", "5ms"}, {"--profile", "moon"}} {
		if err := dejavuErr(t, append([]string{"bench", ref, "--modes", "lazy", "--runs", "1"}, args...)...); !strings.Contains(err.Error(), "profile") {
			t.Errorf("bench %v: %v", args, err)
		}
	}
}
