package backstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// goldenStack pushes the two-layer image overlaybd's own convertor made
// (golden/apply), or its bottom layers alone, as host/name.
func goldenStack(t *testing.T, host, name string, layers ...string) string {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		b, err := os.ReadFile(filepath.Join(testenv.OverlaybdTestdata(t), "golden", "apply", l, "overlaybd.commit"))
		if err != nil {
			t.Fatal(err)
		}
		add, err := overlaybd.Addendum(static.NewLayer(b, overlaybd.LayerMediaType))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.Append(img, add); err != nil {
			t.Fatal(err)
		}
	}
	ref := host + "/" + name
	r, _ := imageref.Parse(ref)
	if err := remote.Write(r.Name, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// An image opened with only its bottom layers is the image those layers
// were: the base of an application image, which a host may be asked to
// mount on its own while it holds the application's snapshots.
func TestBottomLayers(t *testing.T) {
	reg := startRegistry(t)
	app := goldenStack(t, reg.host, "app:v1", "L0", "L1")
	base := goldenStack(t, reg.host, "base:v1", "L0")
	head := func(ref string, opts ...backstore.Option) ([]byte, *backstore.Backstore) {
		bs, err := backstore.Open(context.Background(), ref, append(opts, backstore.WithCacheDir(t.TempDir()))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bs.Close() })
		return readAll(t, bs, 16<<20), bs
	}
	want, _ := head(base)
	got, bs := head(app, backstore.WithLayerCount(1))
	whole, _ := head(app)
	if n := len(bs.Manifest().Layers); n != 1 || len(bs.Layers()) != 1 {
		t.Fatalf("%d layers in the manifest, %d opened; want 1", n, len(bs.Layers()))
	}
	if !bytes.Equal(got, want) {
		t.Error("the application image's bottom layer differs from the base image")
	}
	if bytes.Equal(whole, want) {
		t.Error("the whole application image reads as its base: the test shows nothing")
	}
	for _, n := range []int{-1, 3} {
		if _, err := backstore.Open(context.Background(), app, backstore.WithCacheDir(t.TempDir()), backstore.WithLayerCount(n)); err == nil || !strings.Contains(err.Error(), "layers asked for") {
			t.Errorf("%d layers of 2: %v", n, err)
		}
	}
}
