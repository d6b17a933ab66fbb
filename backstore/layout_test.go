package backstore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// TestLayoutBlobMustBeRegular: a layout whose layer blob is a symlink to
// another file of the host (or a file of the wrong size) is refused by
// inspect and by a mount's open, and the other file's bytes appear in no
// error.
func TestLayoutBlobMustBeRegular(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.Command("cp", "-r", testreg.HelloWorldLayout(t), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	ref := "oci:" + dir + ":" + testreg.HelloWorldConverted
	r, err := imageref.Parse(ref)
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
