package trace_test

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/trace"
)

// release pushes an image of the given layers to host/app:tag.
func release(t *testing.T, host, tag string, layers ...v1.Layer) (imageref.Ref, v1.Hash) {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := imageref.Parse(host + "/app:" + tag)
	if err := remote.Write(ref.Name, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref, d
}

func randomLayer(t *testing.T) v1.Layer {
	t.Helper()
	l, err := random.Layer(4096, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func digests(t *testing.T, layers ...v1.Layer) []v1.Hash {
	t.Helper()
	var out []v1.Hash
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// A release that rebuilt its top layer gets the last release's trace for
// the layers they share: records remapped to the new image's layers, the
// rest dropped, marked as carried. A trace recorded on the new release
// later is picked before the carried one, however they are dated.
func TestCarryToTheNextRelease(t *testing.T) {
	ctx := context.Background()
	host := testreg.Start(t).Addr
	base, python, appV1, appV2, other := randomLayer(t), randomLayer(t), randomLayer(t), randomLayer(t), randomLayer(t)
	v1ref, v1digest := release(t, host, "v1", base, python, appV1)
	// The next release also moved the python layer up: indexes change.
	v2ref, v2digest := release(t, host, "v2", base, appV2, python)
	old := &trace.Trace{Image: v1digest, Layers: digests(t, base, python, appV1), Workload: "web", Recorder: trace.RecorderBackstore, Runs: 1,
		Created: time.Now().UTC(), Records: []trace.Record{
			{Layer: 0, Offset: 0, Length: 100, First: time.Millisecond},
			{Layer: 2, Offset: 10, Length: 50, First: 2 * time.Millisecond},
			{Layer: 1, Offset: 200, Length: 300, First: 3 * time.Millisecond},
		}}
	if _, err := trace.Attach(ctx, v1ref, old); err != nil {
		t.Fatal(err)
	}

	c, err := trace.Carry(ctx, v2ref, v1ref, trace.WithCarryWorkload("web"))
	if err != nil {
		t.Fatal(err)
	}
	if c.From != v1digest || c.Kept != 2 || c.KeptBytes != 400 || c.Dropped != 1 || c.DroppedBytes != 50 || c.Layers != 2 {
		t.Errorf("carried %+v, want 2 records (400 bytes) of 2 layers kept, 1 (50 bytes) dropped, from %s", c, v1digest)
	}
	got, d, err := trace.Pull(ctx, v2ref, trace.WithWorkload("web"))
	if err != nil {
		t.Fatal(err)
	}
	if d != c.Artifact || got.Image != v2digest || len(got.Records) != 2 {
		t.Fatalf("pulled %s %+v, want the carried trace bound to %s", d, got, v2digest)
	}
	for _, r := range got.Records {
		want := map[int64]int{0: 0, 200: 2}[r.Offset] // base stays 0, python is now 2
		if r.Layer != want {
			t.Errorf("record at %d in layer %d, want %d", r.Offset, r.Layer, want)
		}
	}
	infos, err := trace.List(ctx, v2ref)
	if err != nil || len(infos) != 1 {
		t.Fatalf("list: %v %+v", err, infos)
	}
	if infos[0].CarriedFrom != v1digest.String() || len(infos[0].LayerBytes) != 3 || infos[0].LayerBytes[0] != 100 || infos[0].LayerBytes[1] != 0 || infos[0].LayerBytes[2] != 300 {
		t.Errorf("listed %+v, want carried from %s with 100, 0 and 300 bytes per layer", infos[0], v1digest)
	}

	// Recorded on v2, and dated before the carry: still picked first.
	own := &trace.Trace{Image: v2digest, Layers: digests(t, base, appV2, python), Workload: "web", Recorder: trace.RecorderBackstore, Runs: 1,
		Created: time.Now().Add(-time.Hour).UTC(), Records: []trace.Record{{Layer: 1, Offset: 0, Length: 64}}}
	ownDigest, err := trace.Attach(ctx, v2ref, own)
	if err != nil {
		t.Fatal(err)
	}
	if _, d, err := trace.Pull(ctx, v2ref, trace.WithWorkload("web")); err != nil || d != ownDigest {
		t.Errorf("pulled %s (%v), want the trace recorded on the release, %s", d, err, ownDigest)
	}
	if infos, _ := trace.List(ctx, v2ref); len(infos) != 2 || infos[0].Digest != ownDigest || infos[0].CarriedFrom != "" {
		t.Errorf("listed %+v, want the recorded trace first", infos)
	}

	// An image that shares nothing gets nothing.
	unrelated, _ := release(t, host, "x", other)
	if _, err := trace.Carry(ctx, unrelated, v1ref); err == nil || !strings.Contains(err.Error(), "no layer matches") {
		t.Errorf("carried to an image sharing no layer: %v", err)
	}
}
