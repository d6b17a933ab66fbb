package backstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// TestInspectReadsOnlyIndexes: inspect of a registry image asks for the
// layer blob by range only and for a small part of it, and reports the
// layer as the local blob describes it.
func TestInspectReadsOnlyIndexes(t *testing.T) {
	reg := startRegistry(t)
	ref, layerPath, _ := builtImage(t, reg, 300)
	f, err := os.Open(layerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	local, err := overlaybd.OpenBlob(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	reg.Layer(t, ref)
	rep, err := backstore.Inspect(context.Background(), ref, backstore.WithFetchUnit(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if w := reg.Whole(); w != 0 {
		t.Fatalf("inspect made %d whole-blob GETs", w)
	}
	if len(rep.Layers) != 1 || rep.Layers[0].Layer == nil || rep.Device == nil {
		t.Fatalf("report: %+v", rep)
	}
	got, want := *rep.Layers[0].Layer, local.Describe()
	want.Digest, want.MediaType = got.Digest, got.MediaType
	if got != want {
		t.Fatalf("inspect says\n%+v\nthe local blob\n%+v", got, want)
	}
	if int64(rep.Device.Mappings) == 0 || rep.Device.DataBytes != want.DataBytes {
		t.Fatalf("device %+v for layer %+v", rep.Device, want)
	}
}

// TestInspectReportsOtherLayers: a layer that is not overlaybd is listed
// with the reason, where Open refuses the image.
func TestInspectReportsOtherLayers(t *testing.T) {
	reg := startRegistry(t)
	layout := testenv.OverlaybdTestdata(t) + "/hello-world-oci-layout"
	src, _ := imageref.Parse("oci:" + layout + ":amd64")
	dst, _ := imageref.Parse(reg.host + "/hello:gzip")
	if _, err := imageref.Copy(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	reg.Layer(t, dst.String())
	if _, err := backstore.Open(context.Background(), dst.String(), backstore.WithCacheDir(t.TempDir())); err == nil {
		t.Fatal("Open served a gzip layer")
	}
	rep, err := backstore.Inspect(context.Background(), dst.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 1 || rep.Layers[0].Overlaybd || rep.Layers[0].Error == "" || rep.Device != nil {
		t.Fatalf("report: %+v", rep)
	}
	if _, err := backstore.WriteRaw(context.Background(), dst.String(), t.TempDir()+"/x.raw", false); err == nil {
		t.Fatal("WriteRaw wrote a gzip layer")
	}
	if w := reg.Whole(); w != 0 {
		t.Fatalf("%d whole-blob GETs", w)
	}
}
