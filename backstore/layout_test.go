package backstore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// TestLayoutBlobMustBeRegular: a layout whose layer blob is a symlink to
// another file of the host (or a file of the wrong size) is refused by
// inspect and by a mount's open, and the other file's bytes appear in no
// error.
func TestLayoutBlobMustBeRegular(t *testing.T) {
	dir := copyLayout(t)
	ref := "oci:" + dir + ":" + testreg.HelloWorldConverted
	_, m := layoutImage(t, dir, testreg.HelloWorldConverted)
	blob := filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex)
	secret := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(secret, []byte("root:*:20000:0:99999:7:::\n"), 0o600)
	for _, tc := range []struct {
		name    string
		replace func() error
		want    string
	}{
		{"symlink", func() error { os.Remove(blob); return os.Symlink(secret, blob) }, "symbolic link"},
		{"short file", func() error { os.Remove(blob); return os.WriteFile(blob, []byte("root:*:2"), 0o644) }, "holds 8 bytes"},
	} {
		if err := tc.replace(); err != nil {
			t.Fatal(err)
		}
		_, ierr := backstore.Inspect(context.Background(), ref)
		_, oerr := backstore.Open(context.Background(), ref, backstore.WithCacheDir(t.TempDir()))
		for what, err := range map[string]error{"inspect": ierr, "open": oerr} {
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "root:") {
				t.Errorf("%s, %s: %v; want an error saying %q and no bytes of the file", tc.name, what, err, tc.want)
			}
		}
	}
}

// TestLayoutBlobDigestChecked: every reader of a layout (inspect, a mount's
// open, image raw, copy, convert) refuses a layout in which one byte of a
// layer, the manifest or the config was flipped, with an error naming the
// blob's digest and saying it does not match, and the intact fixture still
// reads.
func TestLayoutBlobDigestChecked(t *testing.T) {
	ctx := context.Background()
	readers := map[string]func(dir, tag string) error{
		"inspect": func(dir, tag string) error {
			_, err := backstore.Inspect(ctx, "oci:"+dir+":"+tag)
			return err
		},
		"open": func(dir, tag string) error {
			s, err := backstore.Open(ctx, "oci:"+dir+":"+tag, backstore.WithCacheDir(t.TempDir()))
			if err == nil {
				s.Close()
			}
			return err
		},
		"raw": func(dir, tag string) error {
			_, err := backstore.WriteRaw(ctx, "oci:"+dir+":"+tag, filepath.Join(t.TempDir(), "raw"), false)
			return err
		},
		"copy": func(dir, tag string) error {
			src, _ := imageref.Parse("oci:" + dir + ":" + tag)
			dst, _ := imageref.Parse("oci:" + filepath.Join(t.TempDir(), "copy") + ":x")
			_, err := imageref.Copy(ctx, src, dst)
			return err
		},
		"convert": func(dir, _ string) error {
			// convert reads the original image, not the converted one
			src, _ := imageref.Parse("oci:" + dir + ":amd64")
			img, err := imageref.Image(ctx, src)
			if err != nil {
				return err
			}
			built, err := overlaybd.Convert(ctx, img)
			if err == nil {
				built.Close()
			}
			return err
		},
	}
	for name, read := range readers {
		if err := read(copyLayout(t), testreg.HelloWorldConverted); err != nil {
			t.Fatalf("%s of the intact fixture: %v", name, err)
		}
	}
	for _, what := range []string{"layer", "manifest", "config"} {
		for name, read := range readers {
			dir := copyLayout(t)
			tag := testreg.HelloWorldConverted
			if name == "convert" {
				tag = "amd64"
			}
			digest := flipByte(t, dir, tag, what)
			err := read(dir, tag)
			if err == nil || !strings.Contains(err.Error(), digest+" does not match") {
				t.Errorf("%s of a layout with a flipped %s byte: %v; want an error saying %s does not match", name, what, err, digest)
			}
		}
	}
}

func copyLayout(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.Command("cp", "-r", testreg.HelloWorldLayout(t), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dir
}

// flipByte flips the last byte of the layer, manifest or config blob of the
// image tagged tag in dir (its size stays), and returns the blob's digest.
func flipByte(t *testing.T, dir, tag, what string) string {
	t.Helper()
	img, m := layoutImage(t, dir, tag)
	d := m.Layers[len(m.Layers)-1].Digest
	switch what {
	case "manifest":
		d, _ = img.Digest()
	case "config":
		d = m.Config.Digest
	}
	path := filepath.Join(dir, "blobs", "sha256", d.Hex)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x01
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// layoutImage is the image tagged tag in the layout at dir, and its manifest.
func layoutImage(t *testing.T, dir, tag string) (v1.Image, *v1.Manifest) {
	t.Helper()
	r, err := imageref.Parse("oci:" + dir + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imageref.Image(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return img, m
}
