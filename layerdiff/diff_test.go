package layerdiff_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
	"github.com/dejavu-project/dejavu/layerdiff"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, s string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(s), mode))
}

// steps makes three snapshots of a tree, as three build steps would leave
// it: a base, a step that adds, rewrites and removes, and one that removes
// a whole directory and replaces a file with a directory.
func steps(t *testing.T) []string {
	t.Helper()
	root := t.TempDir()
	a := filepath.Join(root, "a")
	write(t, filepath.Join(a, "etc/hostname"), "base\n", 0o644)
	write(t, filepath.Join(a, "etc/secret"), "s", 0o600)
	write(t, filepath.Join(a, "usr/bin/tool"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(a, "var/cache/apt/pkgcache.bin"), "cache", 0o644)
	write(t, filepath.Join(a, "var/lib/apt/lists/x"), "list", 0o644)
	write(t, filepath.Join(a, "opt/thing"), "file, later a directory", 0o644)
	must(t, os.Symlink("tool", filepath.Join(a, "usr/bin/tool-link")))
	must(t, os.Link(filepath.Join(a, "usr/bin/tool"), filepath.Join(a, "usr/bin/tool-hard")))
	must(t, os.Chown(filepath.Join(a, "etc/secret"), 1000, 1000))
	write(t, filepath.Join(a, "etc/tagged"), "same bytes in both steps", 0o644)
	must(t, unix.Lsetxattr(filepath.Join(a, "etc/tagged"), "user.step", []byte("1"), 0))

	b := filepath.Join(root, "b")
	must(t, exec.Command("cp", "-a", a, b).Run())
	time.Sleep(10 * time.Millisecond) // a rewrite gets a later time
	write(t, filepath.Join(b, "etc/hostname"), "step two\n", 0o644)
	must(t, os.Remove(filepath.Join(b, "etc/secret")))
	write(t, filepath.Join(b, "usr/lib/python3/mod.py"), "print(1)\n", 0o644)
	must(t, os.Link(filepath.Join(b, "usr/lib/python3/mod.py"), filepath.Join(b, "usr/lib/python3/mod-hard.py")))
	must(t, os.Chmod(filepath.Join(b, "usr/bin/tool"), 0o700))
	// Only an extended attribute changes: the entry is in the layer.
	must(t, unix.Lsetxattr(filepath.Join(b, "etc/tagged"), "user.step", []byte("2"), 0))

	c := filepath.Join(root, "c")
	must(t, exec.Command("cp", "-a", b, c).Run())
	must(t, os.RemoveAll(filepath.Join(c, "var/cache/apt")))
	must(t, os.RemoveAll(filepath.Join(c, "var/lib/apt/lists")))
	must(t, os.Remove(filepath.Join(c, "opt/thing")))
	write(t, filepath.Join(c, "opt/thing/inside"), "now a directory", 0o644)
	return []string{a, b, c}
}

// Applied in order, the layers make each snapshot again; a step's layer
// holds only what the step changed.
func TestLayersRebuildTheSteps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the trees have files of other owners")
	}
	dirs := steps(t)
	b, err := layerdiff.Image(context.Background(), dirs, v1.Config{Cmd: []string{"/usr/bin/tool"}}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	layers, err := b.Image.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("%d layers (%v), want 3", len(layers), err)
	}
	got := t.TempDir()
	root, err := os.OpenRoot(got)
	must(t, err)
	defer root.Close()
	for i, l := range layers {
		names := entries(t, l)
		switch i {
		case 1:
			for _, want := range []string{"etc/hostname", "etc/.wh.secret", "usr/bin/tool", "usr/lib/python3/mod.py", "usr/lib/python3/mod-hard.py", "etc/tagged"} {
				if !slices.Contains(names, want) {
					t.Errorf("layer 1 lacks %s: %v", want, names)
				}
			}
			if slices.Contains(names, "usr/bin/tool-link") || slices.Contains(names, "var/lib/apt/lists/x") {
				t.Errorf("layer 1 holds entries the step left alone: %v", names)
			}
		case 2:
			for _, want := range []string{"var/cache/.wh.apt", "var/lib/apt/.wh.lists", "opt/thing/", "opt/thing/inside"} {
				if !slices.Contains(names, want) {
					t.Errorf("layer 2 lacks %s: %v", want, names)
				}
			}
		}
		rc, err := l.Uncompressed()
		must(t, err)
		_, err = overlaybd.ApplyLayer(context.Background(), root, rc)
		rc.Close()
		must(t, err)
		treetest.Compare(t, dirs[i], got)
	}
	if st := b.Layers[2]; st.Whiteouts != 2 {
		t.Errorf("layer 2: %+v, want 2 whiteouts", st)
	}
}

// The same trees make the same image.
func TestLayersReproducible(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the trees have files of other owners")
	}
	dirs := steps(t)
	var digests []v1.Hash
	for range 2 {
		b, err := layerdiff.Image(context.Background(), dirs, v1.Config{}, v1.Platform{OS: "linux", Architecture: "amd64"})
		must(t, err)
		d, err := b.Image.Digest()
		must(t, err)
		digests = append(digests, d)
		b.Close()
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds: %s and %s", digests[0], digests[1])
	}
}

func entries(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	must(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	must(t, err)
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		must(t, err)
		names = append(names, h.Name)
	}
}
