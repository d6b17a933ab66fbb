package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// MountExt4 attaches image to a read-only loop device and mounts it
// read-only at a new directory, which it returns. Both are undone at
// cleanup. It skips (or fails when Strict) without root and loop devices.
func MountExt4(t testing.TB, image string) string {
	t.Helper()
	RequireLoop(t)
	out, err := exec.Command(LookPath("losetup"), "--find", "--show", "--read-only", image).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup %s: %v: %s", image, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(LookPath("losetup"), "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	dir, err := os.MkdirTemp("", "dejavu-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(LookPath("mount"), "-t", "ext4", "-o", "ro,noload", dev, dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Fatalf("mount %s: %v: %s", dev, err, out)
	}
	// Registered after losetup's cleanup, so it runs first.
	t.Cleanup(func() {
		if out, err := exec.Command(LookPath("umount"), dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			return
		}
		os.Remove(dir)
	})
	return dir
}
