package safefile

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// targets makes one of each kind of thing an output path can name that is
// not a regular file. The device node needs root; without it that case is
// skipped.
func targets(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	m["symbolic link"] = filepath.Join(dir, "link")
	if err := os.Symlink(outside, m["symbolic link"]); err != nil {
		t.Fatal(err)
	}
	m["directory"] = filepath.Join(dir, "dir")
	if err := os.Mkdir(m["directory"], 0o755); err != nil {
		t.Fatal(err)
	}
	m["FIFO"] = filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(m["FIFO"], 0o644); err != nil {
		t.Fatal(err)
	}
	m["socket"] = filepath.Join(dir, "sock")
	l, err := net.Listen("unix", m["socket"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	null := filepath.Join(dir, "null")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err == nil {
		m["character device"] = null
	} else {
		t.Logf("no device node (%v): that case is skipped", err)
	}
	return m
}

func TestRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	for want, path := range targets(t, dir) {
		for _, replace := range []bool{false, true} {
			before, _ := os.Lstat(path)
			err := WriteFile(path, []byte("new"), WithReplace(replace))
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s, replace %v: %v, want a refusal naming the path and %q", path, replace, err, want)
			}
			after, err := os.Lstat(path)
			if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
				t.Errorf("%s changed: %v", path, err)
			}
		}
	}
	noTemp(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "link"))
	if err != nil || string(b) != "keep" {
		t.Errorf("the symbolic link's target holds %q, %v", b, err)
	}
}

func TestRegularReplacedOnlyWhenAsked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	if err := WriteFile(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two")); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("second write: %v, want fs.ErrExist naming the path", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Errorf("holds %q after a refused write", b)
	}
	if err := WriteFile(path, []byte("three"), WithReplace(true)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "three" {
		t.Errorf("holds %q after a replacing write", b)
	}
	noTemp(t, dir)
}

// TestCommitRechecks: a device node or a file put at the target after
// Create is not replaced, and the temporary file goes.
func TestCommitRechecks(t *testing.T) {
	dir := t.TempDir()
	for _, replace := range []bool{false, true} {
		path := filepath.Join(dir, "late")
		f, err := Create(path, WithReplace(replace))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/nonexistent", path); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); !errors.Is(err, ErrNotRegular) {
			t.Errorf("replace %v: commit over a new symbolic link: %v", replace, err)
		}
		os.Remove(path)
	}
	path := filepath.Join(dir, "raced")
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("theirs"), 0o644)
	if err := f.Commit(); !errors.Is(err, fs.ErrExist) {
		t.Errorf("commit over a file that appeared: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "theirs" {
		t.Errorf("holds %q", b)
	}
	noTemp(t, dir)
}

func TestCloseWithoutCommitRemoves(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Error("commit after close succeeded")
	}
	noTemp(t, dir)
	if _, err := os.Lstat(filepath.Join(dir, "out")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the target exists: %v", err)
	}
}

func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "out")
	if err := WriteFile(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("%v, want an error naming %s", err, path)
	}
}

// noTemp fails if a temporary file is left in dir.
func noTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
