package testenv

import (
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// GoldenApplySource is the ordinary two-layer image (layer1.tar, then
// layer2.tar) that overlaybd's own convertor turned into the golden apply/
// output.
func GoldenApplySource(t testing.TB) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for _, n := range []string{"layer1.tar", "layer2.tar"} {
		l, err := tarball.LayerFromFile(filepath.Join(OverlaybdTestdata(t), "golden", "apply", n))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
