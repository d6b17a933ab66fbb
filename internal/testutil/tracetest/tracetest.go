package tracetest

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/trace"
)

// PushUnchecked attaches enc to the image at ref as trace.Attach would,
// but without its checks: what anyone who can push a referrer can do.
// trace.Attach refuses such a trace (trace's TestAttachRefusesWhatAStartRefuses).
// annotations are added to (or replace) the usual ones.
func PushUnchecked(t testing.TB, ref string, enc func(image v1.Hash, layers []v1.Descriptor) []byte, annotations map[string]string) {
	t.Helper()
	ctx := context.Background()
	r, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	n, ropts, err := imageref.Remote(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	ropts = append(ropts, remote.WithReferrersTagFallback(true))
	desc, err := remote.Get(n, ropts...)
	if err != nil {
		t.Fatal(err)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	blob := enc(desc.Digest, m.Layers)
	ann := map[string]string{trace.AnnotationWorkload: "hostile", trace.AnnotationRecords: "1", trace.AnnotationCreated: time.Now().UTC().Format(time.RFC3339)}
	maps.Copy(ann, annotations)
	config, layer := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json"), static.NewLayer(blob, trace.MediaType)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(n.Context(), l, ropts...); err != nil {
			t.Fatal(err)
		}
	}
	cd, _ := config.Digest()
	ld, _ := layer.Digest()
	subject := desc.Descriptor
	raw, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "artifactType": trace.ArtifactType,
		"config":      v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: cd, Size: 2},
		"layers":      []v1.Descriptor{{MediaType: trace.MediaType, Digest: ld, Size: int64(len(blob))}},
		"subject":     v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		"annotations": ann,
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	if err := remote.Put(n.Context().Digest(d.String()), testreg.RawManifest(raw), ropts...); err != nil {
		t.Fatal(err)
	}
	if infos, err := trace.List(ctx, r); err != nil || len(infos) != 1 {
		t.Fatalf("pushed, but listed %+v, %v", infos, err)
	}
}
