package ebpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// TestRecordsLoopReads attaches a loop device to a file, reads it with
// direct I/O and expects the recorder to see those reads, and only that
// device's.
func TestRecordsLoopReads(t *testing.T) {
	dev, rec := recordLoop(t, 8<<20)
	start := time.Now()
	// Reads at known offsets, bypassing the page cache.
	if out, err := exec.Command("dd", "if="+dev, "of=/dev/null", "bs=64k", "skip=16", "count=4", "iflag=direct").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v\n%s", err, out)
	}
	events, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	var bytes int64
	for _, e := range events {
		if e.Write {
			t.Errorf("write event %+v", e)
		}
		if e.Offset < 1<<20 || e.Offset+e.Length > 1<<20+256<<10 {
			t.Errorf("event outside the read range: %+v", e)
		}
		if e.Time.Before(start.Add(-time.Second)) || e.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("event time %v is off", e.Time)
		}
		bytes += e.Length
	}
	if bytes != 256<<10 {
		t.Fatalf("saw %d bytes in %d events, want %d", bytes, len(events), 256<<10)
	}
}

func TestDevTRejectsFiles(t *testing.T) {
	if _, err := DevT("/etc/hostname"); err == nil {
		t.Fatal("a regular file has a block device number")
	}
}

// TestKeepsEveryEventOfALongRecording issues more block requests than the
// ring buffer holds, so that it stays complete only if the program wakes
// the reader as the ring fills.
func TestKeepsEveryEventOfALongRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("issues 160,000 block requests")
	}
	const reads = 160_000 // 32-byte events: 5 MB, more than the 4 MiB ring
	dev, rec := recordLoop(t, reads*512, "--direct-io=on")
	if out, err := exec.Command("dd", "if="+dev, "of=/dev/null", "bs=512", fmt.Sprint("count=", reads), "iflag=direct").CombinedOutput(); err != nil {
		rec.Stop()
		t.Fatalf("dd: %v\n%s", err, out)
	}
	events, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, reads)
	for _, e := range events {
		if e.Length != 512 || e.Offset%512 != 0 || e.Offset/512 >= reads {
			t.Fatalf("unexpected event %+v", e)
		}
		seen[e.Offset/512] = true
	}
	missing := 0
	for _, s := range seen {
		if !s {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d sectors read were not recorded (%d events)", missing, reads, len(events))
	}
}

// recordLoop attaches a loop device to a file of size zero bytes (losetup
// given extra flags) and starts recording it.
func recordLoop(t *testing.T, size int64, flags ...string) (string, *Recorder) {
	t.Helper()
	testenv.RequireLoop(t)
	img := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--find", "--show", "--read-only"}, flags...)
	out, err := exec.Command(testenv.LookPath("losetup"), append(args, img)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(testenv.LookPath("losetup"), "-d", dev).Run() })
	devt, err := DevT(dev)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Start(devt)
	if err != nil {
		testenv.Skip(t, "eBPF unavailable: "+err.Error())
	}
	return dev, rec
}
