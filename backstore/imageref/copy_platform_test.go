package imageref

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// WithPlatformOnly takes one image out of an index; an image source and a
// copy without the option are not affected.
func TestCopyPlatformOnly(t *testing.T) {
	ctx := context.Background()
	fixture := fixtureLayout(t)
	list := mustParse(t, "oci:"+fixture+":docker-list")
	arm64 := WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"})

	out := mustParse(t, "oci:"+filepath.Join(t.TempDir(), "layout"))
	got, err := Copy(ctx, list, out, arm64, WithPlatformOnly(true))
	if err != nil || got.String() != dockerArm64 {
		t.Fatalf("copy the arm64 image of the list: %s, %v; want %s", got, err, dockerArm64)
	}
	d, err := Descriptor(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest.String() != dockerArm64 || d.MediaType != types.DockerManifestSchema2 {
		t.Errorf("layout holds %s (%s), want the arm64 image %s", d.Digest, d.MediaType, dockerArm64)
	}

	host := testreg.Start(t).Addr
	mustCopy(t, list, mustParse(t, host+"/hello/world:list"), dockerList)
	reg := mustParse(t, host+"/hello/world:arm64")
	if got, err := Copy(ctx, mustParse(t, host+"/hello/world:list"), reg, arm64, WithPlatformOnly(true)); err != nil || got.String() != dockerArm64 {
		t.Fatalf("registry to registry: %s, %v; want %s", got, err, dockerArm64)
	}
	if d, err := Descriptor(ctx, reg); err != nil || d.Digest.String() != dockerArm64 {
		t.Errorf("registry serves %s (%v), want %s", d.Digest, err, dockerArm64)
	}

	if got, err := Copy(ctx, list, mustParse(t, "oci:"+t.TempDir()), arm64, WithPlatformOnly(false)); err != nil || got.String() != dockerList {
		t.Errorf("without WithPlatformOnly: %s, %v; want the whole list %s", got, err, dockerList)
	}
	image := mustParse(t, "oci:"+fixture+":amd64-converted")
	if got, err := Copy(ctx, image, mustParse(t, "oci:"+t.TempDir()), arm64, WithPlatformOnly(true)); err != nil || got.String() != convertedManifest {
		t.Errorf("an image source: %s, %v; want it unchanged, %s", got, err, convertedManifest)
	}

	_, err = Copy(ctx, list, mustParse(t, "oci:"+t.TempDir()), WithPlatform(v1.Platform{OS: "windows", Architecture: "amd64"}), WithPlatformOnly(true))
	if err == nil || !strings.Contains(err.Error(), "no image for platform windows/amd64") || !strings.Contains(err.Error(), "docker-list") {
		t.Errorf("missing platform: %v, want an error naming the platform and the source", err)
	}
}
