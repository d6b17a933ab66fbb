package overlaybd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// debugfs runs one debugfs request against a raw ext4 image.
func debugfs(t *testing.T, raw, req string) string {
	t.Helper()
	out, err := exec.Command(testenv.LookPath("debugfs"), "-R", req, raw).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v\n%s", req, err, out)
	}
	return string(out)
}

func rawFromFiles(t *testing.T, files ...string) string {
	t.Helper()
	var blobs []*Blob
	for _, f := range files {
		blobs = append(blobs, openBlobFile(t, f))
	}
	d, err := OpenDevice(blobs...)
	if err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(t.TempDir(), "device.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteRaw(t.Context(), d, f); err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestGoldenApplyImage merges the two-layer ext4 image made by overlaybd's
// own convertor and reads the files its README lists.
func TestGoldenApplyImage(t *testing.T) {
	testenv.RequireCommands(t, "debugfs")
	raw := rawFromFiles(t, golden(t, "apply", "L0", "overlaybd.commit"), golden(t, "apply", "L1", "overlaybd.commit"))
	if fi, _ := os.Stat(raw); fi.Size() != 64<<30 {
		t.Fatalf("device is %d bytes, want 64 GiB", fi.Size())
	}
	for path, want := range map[string]string{
		"/etc/hostname":    "golden-host-v2\n",
		"/opt/new.txt":     "added in layer 2\n",
		"/usr/bin/tool.sh": "#!/bin/sh\necho golden\n",
	} {
		if got := debugfs(t, raw, "cat "+path); got != want && !strings.HasSuffix(got, "\n"+want) {
			t.Errorf("%s reads %q, want %q", path, got, want)
		}
	}
	if ls := debugfs(t, raw, "ls -l /var/log"); strings.Contains(ls, "old.log") {
		t.Errorf("/var/log still lists old.log:\n%s", ls)
	}
	// Only the lower layer: the old file is there and the hostname is old.
	lower := rawFromFiles(t, golden(t, "apply", "L0", "overlaybd.commit"))
	if ls := debugfs(t, lower, "ls -l /var/log"); !strings.Contains(ls, "old.log") {
		t.Errorf("lower layer alone lacks /var/log/old.log:\n%s", ls)
	}
	if got := debugfs(t, lower, "cat /etc/hostname"); !strings.Contains(got, "golden-host\n") {
		t.Errorf("lower /etc/hostname = %q", got)
	}
}

// TestHelloWorldRuns assembles the real converted hello-world image, dumps
// /hello with debugfs and runs it.
func TestHelloWorldRuns(t *testing.T) {
	testenv.RequireCommands(t, "debugfs", "e2fsck")
	raw := rawFromFiles(t, filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout", "blobs", "sha256",
		"022231c3f1af70e0cc42f0c3781eabf174cff608210585bf93fc83e16d33672d"))
	ls := debugfs(t, raw, "ls -l /")
	if !strings.Contains(ls, "hello") || !strings.Contains(ls, "13256") {
		t.Fatalf("root listing lacks /hello (13256 bytes):\n%s", ls)
	}
	bin := filepath.Join(t.TempDir(), "hello")
	debugfs(t, raw, "dump /hello "+bin)
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("running /hello: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Hello from Docker!") {
		t.Fatalf("/hello printed:\n%s", out)
	}
	// e2fsck finds only the problem the fixture README documents.
	fsckOut, _ := exec.Command(testenv.LookPath("e2fsck"), "-fn", raw).CombinedOutput()
	for _, line := range strings.Split(string(fsckOut), "\n") {
		if strings.Contains(line, "Problem in HTREE") && !strings.Contains(line, "inode 11") {
			t.Errorf("unexpected e2fsck problem: %s", line)
		}
	}
}
