package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// sourceLayout writes an OCI layout holding img at tag and returns the
// layout directory.
func sourceLayout(t *testing.T, img v1.Image, tag string) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConvertLayersCLI: the two layers of the golden apply/ source stay two
// layers whose UUIDs chain; converting again on the same cache converts
// nothing and prints the same digest; a broken layer fails naming it and
// writes nothing; --flatten with --cache-dir is refused.
func TestConvertLayersCLI(t *testing.T) {
	testenv.RequireCommands(t, "mke2fs", "debugfs")
	img := testenv.GoldenApplySource(t)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	src := "oci:" + sourceLayout(t, img, "app")
	reg := testreg.Start(t).Addr
	cache := t.TempDir()
	d1, e1 := dejavu(t, "image", "convert", src+":app", reg+"/app:obd", "--cache-dir", cache)
	if !strings.Contains(e1, "2 layers: 2 converted, 0 from the cache") {
		t.Errorf("first run said:\n%s", e1)
	}
	out, _ := dejavu(t, "image", "inspect", reg+"/app:obd", "-o", "json")
	var rep backstore.ImageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 2 || rep.Layers[0].Layer == nil || rep.Layers[1].Layer == nil ||
		rep.Layers[1].Layer.ParentUUID != rep.Layers[0].Layer.UUID || rep.Device == nil {
		t.Fatalf("inspect: %s", out)
	}
	d2, e2 := dejavu(t, "image", "convert", src+":app", reg+"/app:obd2", "--cache-dir", cache)
	if d1 != d2 || !strings.Contains(e2, "2 layers: 0 converted, 2 from the cache") {
		t.Errorf("second run printed %q (first %q) and said:\n%s", d2, d1, e2)
	}

	var bad bytes.Buffer
	tw := tar.NewWriter(&bad)
	tw.WriteHeader(&tar.Header{Name: "etc/shadow", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"})
	tw.Close()
	badLayer := static.NewLayer(bad.Bytes(), types.OCIUncompressedLayer)
	badImg, err := mutate.AppendLayers(empty.Image, layers[0], badLayer)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "out")
	err = dejavuErr(t, "image", "convert", "oci:"+sourceLayout(t, badImg, "bad")+":bad", "oci:"+dest+":x")
	d, _ := badLayer.Digest()
	if err == nil || !strings.Contains(err.Error(), "layer 1 ("+d.String()+")") || !strings.Contains(err.Error(), `entry "etc/shadow"`) {
		t.Errorf("broken layer: %v", err)
	}
	if _, serr := os.Stat(dest); !os.IsNotExist(serr) {
		t.Errorf("DEST written after a failed conversion: %v", serr)
	}
	if err := dejavuErr(t, "image", "convert", src+":app", reg+"/x:y", "--flatten", "--cache-dir", cache); err == nil || !strings.Contains(err.Error(), "--flatten") {
		t.Errorf("--flatten --cache-dir: %v", err)
	}
}
