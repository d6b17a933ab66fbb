package ebpf

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// TestRecordsLoopReads attaches a loop device to a file, reads it with
// direct I/O and expects the recorder to see those reads, and only that
// device's.
func TestRecordsLoopReads(t *testing.T) {
	testenv.RequireLoop(t)
	img := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.LookPath("losetup"), "--find", "--show", "--read-only", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	dev := string(out[:len(out)-1])
	defer exec.Command(testenv.LookPath("losetup"), "-d", dev).Run()
	devt, err := DevT(dev)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Start(devt)
	if err != nil {
		testenv.Skip(t, "eBPF unavailable: "+err.Error())
	}
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
