package overlaybd

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

type tarEntry struct {
	name     string
	typ      byte
	body     string
	mode     int64
	link     string
	uid, gid int
}

func tarLayer(t *testing.T, entries ...tarEntry) v1.Layer {
	t.Helper()
	bodies := map[string][]byte{}
	var hdrs []*tar.Header
	for _, e := range entries {
		hdrs = append(hdrs, &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Uid: e.uid, Gid: e.gid})
		if e.typ == tar.TypeReg {
			bodies[e.name] = []byte(e.body)
		}
	}
	return hdrLayer(t, bodies, hdrs...)
}

// TestConvertWhiteouts converts (flattening) a three-layer image with
// overwrites, whiteouts of files and directories and an opaque directory,
// and expects exactly the tree that the final layer stack describes, built
// here by hand.
func TestConvertWhiteouts(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommands(t, "mke2fs", "e2fsck")
	const (
		reg  = tar.TypeReg
		dir  = tar.TypeDir
		sym  = tar.TypeSymlink
		hard = tar.TypeLink
	)
	img, err := mutate.AppendLayers(empty.Image,
		tarLayer(t,
			tarEntry{name: "etc/", typ: dir},
			tarEntry{name: "etc/hostname", typ: reg, body: "one\n"},
			tarEntry{name: "etc/passwd", typ: reg, body: "root:x:0:0::/root:/bin/sh\n"},
			tarEntry{name: "usr/bin/tool", typ: reg, body: "#!/bin/sh\necho tool\n", mode: 0o755},
			tarEntry{name: "usr/bin/tool2", typ: hard, link: "usr/bin/tool"},
			tarEntry{name: "var/cache/a", typ: reg, body: "a\n"},
			tarEntry{name: "var/cache/b", typ: reg, body: "b\n"},
			tarEntry{name: "opt/dir/x", typ: reg, body: "x from layer 1\n"},
			tarEntry{name: "link", typ: sym, link: "etc/hostname"},
		),
		tarLayer(t,
			tarEntry{name: "etc/hostname", typ: reg, body: "two\n"},
			tarEntry{name: "var/cache/.wh.a", typ: reg},
			tarEntry{name: "opt/dir/", typ: dir},
			tarEntry{name: "opt/dir/.wh..wh..opq", typ: reg},
			tarEntry{name: "opt/dir/y", typ: reg, body: "y from layer 2\n"},
			tarEntry{name: "home/user/file", typ: reg, body: "mine\n", mode: 0o600, uid: 1000, gid: 1000},
		),
		tarLayer(t,
			tarEntry{name: ".wh.var", typ: reg},
			tarEntry{name: "var2/file", typ: reg, body: "new var\n"},
		),
	)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Cmd: []string{"/usr/bin/tool"}, Env: []string{"A=1"}, WorkingDir: "/home/user"})
	if err != nil {
		t.Fatal(err)
	}

	want := t.TempDir()
	put := func(name, body string, mode os.FileMode) {
		p := filepath.Join(want, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	put("etc/hostname", "two\n", 0o644)
	put("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
	put("usr/bin/tool", "#!/bin/sh\necho tool\n", 0o755)
	os.Link(filepath.Join(want, "usr/bin/tool"), filepath.Join(want, "usr/bin/tool2"))
	put("opt/dir/y", "y from layer 2\n", 0o644)
	put("home/user/file", "mine\n", 0o600)
	os.Lchown(filepath.Join(want, "home/user/file"), 1000, 1000)
	put("var2/file", "new var\n", 0o644)
	os.Symlink("etc/hostname", filepath.Join(want, "link"))

	built, err := Convert(context.Background(), img, WithFlatten(true))
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	cf, err := built.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"/usr/bin/tool"}) || !slices.Equal(cf.Config.Env, []string{"A=1"}) || cf.Config.WorkingDir != "/home/user" {
		t.Errorf("runtime config not kept: %+v", cf.Config)
	}
	m, err := built.Image.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Layers[0].Annotations[AnnotationVersion] != LayerVersion || m.Layers[0].Annotations[AnnotationBlobDigest] != m.Layers[0].Digest.String() {
		t.Errorf("manifest layers: %+v", m.Layers)
	}
	raw, _ := rawFromLayer(t, built.LayerPath)
	fsck(t, raw)
	treetest.Compare(t, want, testenv.MountExt4(t, raw))
}
