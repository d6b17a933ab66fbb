package testreg

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// HelloWorldConverted is the tag, in the hello-world layout, of Docker's
// hello-world converted to overlaybd by the overlaybd tools.
const HelloWorldConverted = "amd64-converted"

// HelloWorldLayout is the OCI layout of the shared fixtures that holds
// Docker's hello-world (tags amd64, docker-list) and its overlaybd
// conversion (HelloWorldConverted). It skips (or fails when strict) when the
// fixtures are missing.
func HelloWorldLayout(t testing.TB) string {
	t.Helper()
	return filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout")
}

// HelloWorld pushes the converted hello-world image to r as repoTag (such as
// "hello:obd") and returns its reference.
func (r *Registry) HelloWorld(t testing.TB, repoTag string) string {
	t.Helper()
	ref := r.Ref(repoTag)
	Push(t, HelloWorldLayout(t), HelloWorldConverted, ref)
	return ref
}

// Push copies the image or index tagged tag in the OCI layout at dir to the
// registry reference ref, byte for byte (its digest stays).
func Push(t testing.TB, dir, tag, ref string) {
	t.Helper()
	dst, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("testreg: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("testreg: layout %s: %v", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("testreg: layout %s: %v", dir, err)
	}
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] != tag {
			continue
		}
		if d.MediaType.IsIndex() {
			ii, err := idx.ImageIndex(d.Digest)
			if err == nil {
				err = remote.WriteIndex(dst, ii)
			}
			if err != nil {
				t.Fatalf("testreg: push %s:%s to %s: %v", dir, tag, ref, err)
			}
			return
		}
		img, err := idx.Image(d.Digest)
		if err == nil {
			err = remote.Write(dst, img)
		}
		if err != nil {
			t.Fatalf("testreg: push %s:%s to %s: %v", dir, tag, ref, err)
		}
		return
	}
	t.Fatalf("testreg: layout %s has no tag %q", dir, tag)
}
