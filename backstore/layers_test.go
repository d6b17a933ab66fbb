package backstore_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// TestManyLayersRefusedUpFront: a manifest naming one layer 5,000 times
// (the registry's to write) is refused before any work per layer; it cost
// minutes of CPU when the layer count was checked only at the merge.
func TestManyLayersRefusedUpFront(t *testing.T) {
	reg := testreg.Start(t)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	base, err := name.ParseReference(reg.Ref("many:base"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(base, img); err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layer := m.Layers[0]
	m.Layers = make([]v1.Descriptor, 5000)
	for i := range m.Layers {
		m.Layers[i] = layer
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("many:v1")
	dst, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Put(dst, testreg.RawManifest(raw)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = backstore.Inspect(context.Background(), ref, backstore.WithCacheDir(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "5000 layers; at most 255") {
		t.Fatalf("inspect: %v, want the layer count refused", err)
	}
	if _, err := backstore.Open(context.Background(), ref, backstore.WithCacheDir(t.TempDir())); err == nil || !strings.Contains(err.Error(), "5000 layers") {
		t.Fatalf("open: %v, want the layer count refused", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("refusing took %s", took)
	}
}
