package imageref

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

const (
	convertedManifest = "sha256:42caa56a19e082b872d43f645bb392e25c9e78bce429755bd709fac598265f88"
	convertedLayer    = "sha256:022231c3f1af70e0cc42f0c3781eabf174cff608210585bf93fc83e16d33672d"
	convertedSize     = 642560
	dockerList        = "sha256:726023f73a8fc5103fa6776d48090539042cb822531c6b751b1f6dd18cb5705d"
	dockerArm64       = "sha256:efebf0f7aee69450f99deafe11121afa720abed733943e50581a9dc7540689c8"
	dockerS390x       = "sha256:574efe68740d3bee2ef780036aee2e2da5cf7097ac06513f9f01f41e03365399"
)

func fixtureLayout(t *testing.T) string {
	t.Helper()
	return filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout")
}

func mustParse(t *testing.T, s string) Ref {
	t.Helper()
	r, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustCopy(t *testing.T, src, dst Ref, want string) {
	t.Helper()
	got, err := Copy(context.Background(), src, dst)
	if err != nil {
		t.Fatalf("Copy %s -> %s: %v", src, dst, err)
	}
	if got.String() != want {
		t.Fatalf("Copy %s -> %s returned %s, want %s", src, dst, got, want)
	}
}

func readBlob(t *testing.T, dir, digest string) []byte {
	t.Helper()
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCopyOverlaybdImage(t *testing.T) {
	ctx := context.Background()
	fixture := fixtureLayout(t)
	host := testreg.Start(t).Addr
	out := filepath.Join(t.TempDir(), "layout")

	src := mustParse(t, "oci:"+fixture+":amd64-converted")
	reg := mustParse(t, host+"/hello/overlaybd:converted")
	dst := mustParse(t, "oci:"+out+":back")

	mustCopy(t, src, reg, convertedManifest)
	mustCopy(t, reg, dst, convertedManifest)

	// Both the registry and the new layout must name the same manifest.
	for _, r := range []Ref{reg, dst} {
		d, err := Descriptor(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Digest.String() != convertedManifest || d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: descriptor %s %s, want %s %s", r, d.Digest, d.MediaType, convertedManifest, types.OCIManifestSchema1)
		}
	}

	if !bytes.Equal(readBlob(t, out, convertedManifest), readBlob(t, fixture, convertedManifest)) {
		t.Error("manifest bytes differ after the round trip")
	}
	got, want := readBlob(t, out, convertedLayer), readBlob(t, fixture, convertedLayer)
	if len(got) != convertedSize || !bytes.Equal(got, want) {
		t.Errorf("layer blob: %d bytes after the round trip, want the fixture's %d bytes unchanged", len(got), len(want))
	}

	// The layer as served by the registry, read through the package.
	img, err := Image(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(served, want) {
		t.Errorf("layer served by the registry differs from the fixture (%d bytes, %v)", len(served), err)
	}

	var idx v1.IndexManifest
	if err := json.Unmarshal(readBlobFile(t, filepath.Join(out, "index.json")), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Annotations[refNameAnnotation] != "back" {
		t.Errorf("new layout index.json: %+v, want one entry named back", idx.Manifests)
	}
}

func readBlobFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The docker-list entry is a Docker manifest list whose nine images are all in
// the fixture, so the real index can be copied.
func TestCopyDockerManifestList(t *testing.T) {
	ctx := context.Background()
	fixture := fixtureLayout(t)
	host := testreg.Start(t).Addr
	out := filepath.Join(t.TempDir(), "layout")

	src := mustParse(t, "oci:"+fixture+":docker-list")
	reg := mustParse(t, host+"/hello/world:list")
	dst := mustParse(t, "oci:"+out)

	mustCopy(t, src, reg, dockerList)
	mustCopy(t, reg, dst, dockerList)

	d, err := Descriptor(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	if d.MediaType != types.DockerManifestList {
		t.Errorf("registry serves the list as %s, want %s", d.MediaType, types.DockerManifestList)
	}

	ii, err := Index(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 9 {
		t.Fatalf("copied list has %d children, want 9", len(im.Manifests))
	}
	for _, child := range im.Manifests {
		if child.MediaType != types.DockerManifestSchema2 {
			t.Errorf("child %s is %s, want a Docker manifest", child.Digest, child.MediaType)
		}
		img, err := ii.Image(child.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range append(m.Layers, m.Config) {
			if !bytes.Equal(readBlob(t, out, b.Digest.String()), readBlob(t, fixture, b.Digest.String())) {
				t.Errorf("blob %s of %s differs after the round trip", b.Digest, child.Platform)
			}
		}
	}

	// Platform resolution, from the registry and from the layout.
	for _, tc := range []struct {
		r    Ref
		p    v1.Platform
		want string
	}{
		{reg, v1.Platform{OS: "linux", Architecture: "arm64"}, dockerArm64},
		{dst, v1.Platform{OS: "linux", Architecture: "s390x"}, dockerS390x},
	} {
		img, err := Image(ctx, tc.r, WithPlatform(tc.p))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := img.Digest(); got.String() != tc.want {
			t.Errorf("%s for %s: %s, want %s", tc.r, tc.p, got, tc.want)
		}
	}
	_, err = Image(ctx, reg, WithPlatform(v1.Platform{OS: "windows", Architecture: "amd64"}))
	if err == nil || !strings.Contains(err.Error(), "no image for platform windows/amd64") || !strings.Contains(err.Error(), "linux/s390x") {
		t.Errorf("missing platform error = %v", err)
	}
}

// An OCI index made here, copied layout to layout and then registry to
// registry, covers the directions the fixture tests do not.
func TestCopyRandomIndex(t *testing.T) {
	ctx := context.Background()
	ii, err := random.Index(1024, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ii.Digest()
	dir := t.TempDir()
	a := mustParse(t, "oci:"+filepath.Join(dir, "a")+":rand")
	b := mustParse(t, "oci:"+filepath.Join(dir, "b")+":rand")
	if err := WriteIndex(ctx, a, ii); err != nil {
		t.Fatal(err)
	}
	mustCopy(t, a, b, want.String())

	host := testreg.Start(t).Addr
	r1 := mustParse(t, host+"/one/rand:v1")
	r2 := mustParse(t, host+"/two/rand@"+want.String())
	mustCopy(t, b, r1, want.String())
	mustCopy(t, r1, r2, want.String())

	got, err := Index(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, child := range im.Manifests {
		img, err := got.Image(child.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("child %s: %v", child.Digest, err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("child %s layer: %v", child.Digest, err)
			}
			rc.Close()
		}
	}

	// Pushing under another digest must fail before anything is uploaded.
	wrong := mustParse(t, host+"/three/rand@"+convertedManifest)
	if _, err := Copy(ctx, r1, wrong); err == nil || !strings.Contains(err.Error(), "source digest is "+want.String()) {
		t.Errorf("copy to a mismatched digest: %v", err)
	}
}

func TestLayoutSelection(t *testing.T) {
	ctx := context.Background()
	fixture := fixtureLayout(t)

	_, err := Image(ctx, mustParse(t, "oci:"+fixture))
	if err == nil {
		t.Fatal("untagged reference to a layout with 11 entries succeeded")
	}
	for _, want := range []string{"oci:" + fixture + ": index.json lists 11 manifests", "amd64-converted, arm64, docker-list, amd64, 7 unnamed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	_, err = Image(ctx, mustParse(t, "oci:"+fixture+":foo"))
	if err == nil || !strings.Contains(err.Error(), `oci:`+fixture+`:foo: no manifest named "foo" in index.json (have: amd64-converted, arm64`) {
		t.Errorf("unknown tag error = %v", err)
	}

	_, err = Image(ctx, mustParse(t, "oci:"+t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Errorf("empty directory error = %v", err)
	}
}

func TestWriteLayoutReplacesSameName(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	tagged := mustParse(t, "oci:"+dir+":app")
	var last v1.Hash
	for range 2 {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteImage(ctx, tagged, img); err != nil {
			t.Fatal(err)
		}
		last, _ = img.Digest()
	}
	// One entry is left, so the untagged form resolves too.
	for _, r := range []Ref{tagged, mustParse(t, "oci:"+dir)} {
		d, err := Descriptor(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Digest != last {
			t.Errorf("%s names %s, want the last image written, %s", r, d.Digest, last)
		}
	}

	// Copying within one layout adds a name for the same manifest.
	mustCopy(t, tagged, mustParse(t, "oci:"+dir+":app2"), last.String())
	if d, err := Descriptor(ctx, tagged); err != nil || d.Digest != last {
		t.Errorf("after copying app to app2, app names %s (%v), want %s", d.Digest, err, last)
	}

	// Writing the same image untagged twice adds one unnamed entry.
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	untagged := mustParse(t, "oci:"+dir)
	for range 2 {
		if err := WriteImage(ctx, untagged, img); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Image(ctx, untagged)
	if err == nil || !strings.Contains(err.Error(), "lists 3 manifests") || !strings.Contains(err.Error(), "app, app2, 1 unnamed") {
		t.Errorf("after an untagged write: %v", err)
	}

	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteImage(ctx, mustParse(t, "oci:"+file), img); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("write into a file: %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	host := testreg.Start(t).Addr
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Image(ctx, mustParse(t, host+"/hello/world:none"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Image with a cancelled context: %v", err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteImage(ctx, mustParse(t, host+"/hello/world:new"), img); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteImage with a cancelled context: %v", err)
	}
}
