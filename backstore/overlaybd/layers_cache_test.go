package overlaybd

import (
	"archive/tar"
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

func convertT(t *testing.T, img v1.Image, opts ...BuildOption) (*Built, v1.Hash, []v1.Hash) {
	t.Helper()
	built, err := Convert(context.Background(), img, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { built.Close() })
	d, err := built.Image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := built.Image.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var layers []v1.Hash
	for _, l := range m.Layers {
		layers = append(layers, l.Digest)
	}
	return built, d, layers
}

// TestConvertLayersReproducible converts one image twice, each time with a
// cache directory of its own, and expects the same manifest and blobs; a
// third run on the first cache converts nothing; an image that shares the
// two bottom layers converts only its own top layer, and pushing it after
// the first one uploads only that layer and the config.
func TestConvertLayersReproducible(t *testing.T) {
	testenv.RequireCommands(t, "mke2fs", "debugfs", "e2fsck")
	layers := awkwardLayers(t)
	imgA := imageOf(t, layers...)
	c1, c2 := t.TempDir(), t.TempDir()
	b1, d1, l1 := convertT(t, imgA, WithCacheDir(c1))
	_, d2, l2 := convertT(t, imgA, WithCacheDir(c2))
	if d1 != d2 || !equalHashes(l1, l2) {
		t.Fatalf("two conversions differ:\n%s %v\n%s %v", d1, l1, d2, l2)
	}
	t.Logf("manifest %s, layers %v", d1, l1)
	if b1.Stats.Converted != 3 || b1.Stats.Cached != 0 {
		t.Errorf("first run: %+v", b1.Stats)
	}
	b3, d3, _ := convertT(t, imgA, WithCacheDir(c1))
	if b3.Stats.Cached != 3 || b3.Stats.Converted != 0 || d3 != d1 {
		t.Errorf("third run: %+v, digest %s (want %s)", b3.Stats, d3, d1)
	}

	top := hdrLayer(t, map[string][]byte{"opt/b.txt": []byte("only in B\n")}, reg("opt/b.txt", 0o644),
		&tar.Header{Name: "usr/bin/.wh.tool", Typeflag: tReg})
	imgB := imageOf(t, layers[0], layers[1], top)
	bB, _, lB := convertT(t, imgB, WithCacheDir(c1))
	if bB.Stats.Converted != 1 || bB.Stats.Cached != 2 {
		t.Errorf("image B: %+v, want 1 converted and 2 from the cache", bB.Stats)
	}
	if !equalHashes(lB[:2], l1[:2]) || lB[2] == l1[2] {
		t.Errorf("image B layers %v, image A's %v: want the two bottom ones shared", lB, l1)
	}
	// On layers rebuilt from the cache, B's top layer is the one a
	// conversion from scratch makes.
	if _, _, fresh := convertT(t, imgB); !equalHashes(fresh, lB) {
		t.Errorf("image B converted from scratch: %v, over cached layers: %v", fresh, lB)
	}
	// The rebuilt stack under B's top layer must be right too.
	raw := rawFromFiles(t, bB.LayerPaths...)
	fsck(t, raw)
	if got := debugfs(t, raw, "cat /opt/b.txt"); !strings.HasSuffix(got, "only in B\n") {
		t.Errorf("/opt/b.txt reads %q", got)
	}

	var count testreg.Counter
	reg := testreg.Start(t, testreg.WithCounter(&count))
	push := func(img v1.Image, tag string) {
		ref, err := imageref.Parse(reg.Ref("app:" + tag))
		if err != nil {
			t.Fatal(err)
		}
		if err := imageref.WriteImage(context.Background(), ref, img, imageref.WithInsecure(true)); err != nil {
			t.Fatal(err)
		}
	}
	push(b1.Image, "a")
	if n := count.Uploads(); n != 4 {
		t.Errorf("image A: %d blob uploads, want 4 (3 layers and the config)", n)
	}
	count.Reset()
	push(bB.Image, "b")
	t.Logf("image B: %d blob uploads, %d blob HEADs", count.Uploads(), count.BlobHeads())
	if n := count.Uploads(); n != 2 {
		t.Errorf("image B: %d blob uploads, want 2 (its top layer and the config)", n)
	}
}

func equalHashes(a, b []v1.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConvertLayersLinkOutlivesName: a hard link made in one layer to a
// file of a lower one keeps the content when a third layer removes the
// original name.
func TestConvertLayersLinkOutlivesName(t *testing.T) {
	testenv.RequireCommands(t, "mke2fs", "debugfs", "e2fsck")
	body := randBytes(7, 100<<10)
	img := imageOf(t,
		hdrLayer(t, map[string][]byte{"usr/lib/big": body}, reg("usr/lib/big", 0o644)),
		hdrLayer(t, nil, &tar.Header{Name: "data/keep", Typeflag: tHard, Linkname: "usr/lib/big"}),
		hdrLayer(t, nil, &tar.Header{Name: "usr/lib/.wh.big", Typeflag: tReg}),
	)
	built, _, _ := convertT(t, img)
	raw := rawFromFiles(t, built.LayerPaths...)
	fsck(t, raw)
	if got := debugfs(t, raw, "cat /data/keep"); !strings.HasSuffix(got, string(body)) {
		t.Errorf("/data/keep lost its content (%d bytes read)", len(got))
	}
	if st := debugfs(t, raw, "stat /data/keep"); !strings.Contains(st, "Links: 1 ") {
		t.Errorf("/data/keep:\n%s", st)
	}
	if ls := debugfs(t, raw, "ls /usr/lib"); strings.Contains(ls, "big") {
		t.Errorf("/usr/lib still lists big:\n%s", ls)
	}
}
