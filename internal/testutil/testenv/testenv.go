package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RequirePrivilegedEnv names the variable that turns skips into failures.
const RequirePrivilegedEnv = "DEJAVU_REQUIRE_PRIVILEGED"

// Strict reports whether skips for missing capabilities must fail instead.
func Strict() bool {
	v := os.Getenv(RequirePrivilegedEnv)
	return v != "" && v != "0" && v != "false"
}

// Skip skips the test with reason, or fails it when Strict is set.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s (%s is set, so this may not be skipped)", reason, RequirePrivilegedEnv)
	}
	t.Skip(reason)
}

// RepoRoot returns the repository's top directory, found from this file.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// SharedDir returns the shared fixture directory that sits beside the
// repository (../shared), as CI lays it out. It skips (or fails when Strict)
// when it is missing.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "..", "shared")
	if _, err := os.Stat(filepath.Join(dir, "testdata")); err != nil {
		Skip(t, "reference fixtures not found at ../shared/testdata beside the repository")
	}
	return dir
}

// OverlaybdTestdata returns ../shared/testdata/overlaybd.
func OverlaybdTestdata(t testing.TB) string {
	t.Helper()
	return filepath.Join(SharedDir(t), "testdata", "overlaybd")
}

// RequireRoot skips (or fails when Strict) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "test needs root")
	}
}

// RequireCommands skips (or fails when Strict) unless every named program is
// on PATH (or in /sbin, /usr/sbin, which non-root PATHs often lack).
func RequireCommands(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if LookPath(n) == "" {
			Skip(t, "test needs the program "+n+" (install it, e.g. with make deps)")
		}
	}
}

// LookPath finds a program on PATH or in the sbin directories; "" if absent.
func LookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// RequireLoop skips (or fails when Strict) unless loop devices can be used.
func RequireLoop(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	RequireCommands(t, "losetup", "mount", "umount")
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		Skip(t, "test needs loop devices (/dev/loop-control is missing)")
	}
}

// RequireFUSE skips (or fails when Strict) unless /dev/fuse is there.
func RequireFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Skip(t, "test needs /dev/fuse")
	}
}

// RequireLazyMount skips (or fails when strict) unless the machine can
// mount an image lazily: root, loop devices and FUSE.
func RequireLazyMount(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	RequireLoop(t)
	RequireFUSE(t)
}
