package snapshotter_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/busybox"
	"github.com/dejavu-project/dejavu/internal/testutil/ctdtest"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/snapshotter"
)

// TestBaseImageUnderAnApplication: an application image built on a base
// image shares its bottom layer. After the application ran, a container of
// the base image stands on that shared layer's snapshot, which names the
// application's image: it gets the application image's bottom layer
// mounted (before, a snapshot below an image's top was refused), prints
// the right bytes, and reads the shared layer's bytes from the cache the
// application's start filled.
func TestBaseImageUnderAnApplication(t *testing.T) {
	ctdtest.Require(t)
	addr, tree, base := busybox.Image(t)
	app := onTop(t, base, addr+"/bb-app:v1")
	var count testreg.Counter
	proxy := testreg.Proxy(t, addr, &count)
	count.Layer(t, base)
	e := newEnv(t, "")
	e.startInProcess(t)
	e.StartContainerd(t)
	want := busybox.MD5Listing(t, tree)

	papp, pbase := strings.Replace(app, addr, proxy, 1), strings.Replace(base, addr, proxy, 1)
	e.pull(t, papp)
	if got := e.Run(t, papp, "app", []string{snapshotter.LabelTrace + "=none"}, md5Data...); got != want {
		t.Fatalf("application container printed:\n%s\nwant:\n%s", got, want)
	}
	e.WaitUnmounted(t)
	fetched := count.Ranged()
	if fetched == 0 {
		t.Fatal("the application's start fetched nothing of the shared layer")
	}
	e.pull(t, pbase)
	if got := e.Run(t, pbase, "base", []string{snapshotter.LabelTrace + "=none"}, md5Data...); got != want {
		t.Fatalf("base container printed:\n%s\nwant:\n%s", got, want)
	}
	e.WaitUnmounted(t)
	if n := count.Ranged() - fetched; n != 0 {
		t.Errorf("the base image's start fetched %d ranges of the shared layer, which the cache held", n)
	}
}

// onTop pushes to ref the image at base with one more overlaybd layer on
// top that changes nothing (an LSMT layer without mappings), as an image
// built FROM base is, and returns ref.
func onTop(t *testing.T, base, ref string) string {
	t.Helper()
	b, err := imageref.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(b.Name)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	var lower bytes.Buffer
	_, err = lower.ReadFrom(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := overlaybd.OpenBlob(bytes.NewReader(lower.Bytes()), int64(lower.Len()))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := overlaybd.OpenDevice(blob)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "top.blob")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := overlaybd.WriteBlob(f, bytes.NewReader(nil), nil, dev.Size()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	top, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	add, err := overlaybd.Addendum(static.NewLayer(top, overlaybd.LayerMediaType))
	if err != nil {
		t.Fatal(err)
	}
	next, err := mutate.Append(img, add)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := imageref.Parse(ref)
	if err := remote.Write(r.Name, next); err != nil {
		t.Fatal(err)
	}
	return ref
}
