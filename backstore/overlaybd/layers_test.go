package overlaybd

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// hdrLayer makes an uncompressed layer of the given headers; regular files
// get bodies[name].
func hdrLayer(t *testing.T, bodies map[string][]byte, hdrs ...*tar.Header) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		h.Size = int64(len(bodies[h.Name]))
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.ModTime.IsZero() {
			h.ModTime = time1
		}
		if len(h.PAXRecords) > 0 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(bodies[h.Name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var time1 = time.Unix(1700000000, 0)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

const (
	tReg  = tar.TypeReg
	tDir  = tar.TypeDir
	tSym  = tar.TypeSymlink
	tHard = tar.TypeLink
)

func reg(name string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tReg, Mode: mode}
}

// awkwardLayers are three layers with every kind of change a layer can
// make: rewrites, whiteouts of files and directories, an opaque directory,
// hard links within a layer and to files of lower layers, a file replaced by a directory and back, owners, set-id
// modes, extended attributes, symlinks, device nodes and a fifo.
func awkwardLayers(t *testing.T) []v1.Layer {
	big := randBytes(1, 3<<20)
	l1 := hdrLayer(t, map[string][]byte{
		"etc/hostname": []byte("one\n"), "usr/bin/tool": []byte("#!/bin/sh\necho tool\n"),
		"usr/lib/big": big, "var/cache/a": []byte("a\n"), "var/cache/b": []byte("b\n"),
		"opt/app/x": []byte("x from layer 1\n"), "opt/app/sub/y": []byte("y\n"), "srv": []byte("srv file\n"),
		"home/user/.profile": []byte("PS1=x\n"), "bin/su": []byte("su\n"), "etc/caps": []byte("cap\n"),
	},
		&tar.Header{Name: "etc/", Typeflag: tDir},
		reg("etc/hostname", 0o644),
		&tar.Header{Name: "etc/caps", Typeflag: tReg, Mode: 0o755, PAXRecords: map[string]string{
			"SCHILY.xattr.user.note": "hello", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
		reg("usr/bin/tool", 0o755),
		&tar.Header{Name: "usr/bin/tool2", Typeflag: tHard, Linkname: "usr/bin/tool"},
		reg("usr/lib/big", 0o644),
		reg("var/cache/a", 0o644), reg("var/cache/b", 0o644),
		reg("opt/app/x", 0o644), reg("opt/app/sub/y", 0o600),
		reg("srv", 0o644),
		&tar.Header{Name: "home/user/", Typeflag: tDir, Mode: 0o700, Uid: 1000, Gid: 1000},
		&tar.Header{Name: "home/user/.profile", Typeflag: tReg, Mode: 0o640, Uid: 1000, Gid: 1000},
		// An explicit entry: Extract leaves out a directory that only its
		// (later removed) children made.
		&tar.Header{Name: "bin/", Typeflag: tDir},
		reg("bin/su", 0o4755),
		&tar.Header{Name: "link", Typeflag: tSym, Linkname: "etc/hostname"},
		&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Devminor: 0, Gid: 6},
		&tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
	)
	l2 := hdrLayer(t, map[string][]byte{
		"etc/hostname": []byte("two\n"), "usr/bin/tool2": []byte("rewritten tool2\n"),
		"opt/app/z": []byte("z from layer 2\n"), "srv/inside": []byte("now a dir\n"),
		"home/user/big-link": nil,
	},
		reg("etc/hostname", 0o644),
		reg("usr/bin/tool2", 0o755),
		&tar.Header{Name: "var/cache/.wh.a", Typeflag: tReg},
		&tar.Header{Name: "opt/app/", Typeflag: tDir},
		&tar.Header{Name: "opt/app/.wh..wh..opq", Typeflag: tReg},
		reg("opt/app/z", 0o644),
		&tar.Header{Name: "srv/", Typeflag: tDir, Mode: 0o750},
		reg("srv/inside", 0o644),
		&tar.Header{Name: "home/user/big-link", Typeflag: tHard, Linkname: "usr/lib/big"},
		&tar.Header{Name: "etc/tool-link", Typeflag: tHard, Linkname: "usr/bin/tool"},
	)
	l3 := hdrLayer(t, map[string][]byte{"var2/file": []byte("new var\n"), "srv": []byte("a file again\n")},
		&tar.Header{Name: ".wh.var", Typeflag: tReg},
		reg("var2/file", 0o644),
		reg("srv", 0o600),
		&tar.Header{Name: "bin/.wh.su", Typeflag: tReg},
	)
	return []v1.Layer{l1, l2, l3}
}

func imageOf(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Cmd: []string{"/usr/bin/tool"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// flattened is the image's file tree as go-containerregistry's
// mutate.Extract flattens it, written out by ApplyLayer. Extract emits the
// top layer first, so a hard link to a file of a lower layer comes before
// its target: links are applied after everything else.
func flattened(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	rc := mutate.Extract(img)
	defer rc.Close()
	var files, links bytes.Buffer
	fw, lw := tar.NewWriter(&files), tar.NewWriter(&links)
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		w := fw
		if h.Typeflag == tHard {
			w = lw
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
	}
	fw.Close()
	lw.Close()
	for _, b := range []*bytes.Buffer{&files, &links} {
		if _, err := ApplyLayer(context.Background(), root, b); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestConvertLayersEqualsExtract: every file of the converted image (bytes,
// modes, owners, links, extended attributes, modification times) equals the
// source flattened by mutate.Extract; the layer count is kept and the
// merged device passes e2fsck.
func TestConvertLayersEqualsExtract(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommands(t, "mke2fs", "debugfs", "e2fsck")
	img := imageOf(t, awkwardLayers(t)...)
	built, err := Convert(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	m, err := built.Image.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 3 || len(built.LayerPaths) != 3 || built.Stats.Converted != 3 {
		t.Fatalf("%d manifest layers, %d blobs, stats %+v; want 3", len(m.Layers), len(built.LayerPaths), built.Stats)
	}
	for i, l := range m.Layers {
		if l.Annotations[AnnotationBlobDigest] != l.Digest.String() || l.MediaType != LayerMediaType {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
	cf, err := built.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"/usr/bin/tool"}) || len(cf.RootFS.DiffIDs) != 3 {
		t.Errorf("config: %+v", cf)
	}
	raw := rawFromFiles(t, built.LayerPaths...)
	fsck(t, raw)
	want, got := flattened(t, img), testenv.MountExt4(t, raw)
	treetest.Compare(t, want, got)
	compareExtras(t, want, got)
}

// compareExtras checks what treetest.Compare leaves out: extended
// attributes of every entry, and modification times of all but
// directories (whose times Extract's own application moves).
func compareExtras(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		g := filepath.Join(got, rel)
		wx, gx := xattrs(t, p), xattrs(t, g)
		if !maps.Equal(wx, gx) {
			t.Errorf("%s: xattrs %q, want %q", rel, gx, wx)
		}
		n += len(wx)
		if !d.IsDir() {
			wi, _ := os.Lstat(p)
			gi, err := os.Lstat(g)
			if err == nil && !wi.ModTime().Equal(gi.ModTime()) {
				t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("the source has no extended attributes: the check checked nothing")
	}
}

func xattrs(t *testing.T, p string) map[string]string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		v := make([]byte, 64<<10)
		k, err := unix.Lgetxattr(p, string(name), v)
		if err != nil {
			t.Fatalf("%s: getxattr %s: %v", p, name, err)
		}
		out[string(name)] = string(v[:k])
	}
	return out
}
