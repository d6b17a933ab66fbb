package overlaybd_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// TestConvertRefusesOverlaybdImage: the real converted image is refused
// with a message, not "converted" into a file system holding one file,
// overlaybd.commit.
func TestConvertRefusesOverlaybdImage(t *testing.T) {
	ref, err := imageref.Parse("oci:" + filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout") + ":amd64-converted")
	if err != nil {
		t.Fatal(err)
	}
	img, err := imageref.Image(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	built, err := overlaybd.Convert(context.Background(), img)
	if err == nil {
		built.Close()
		t.Fatal("an overlaybd image was converted again")
	}
	if !strings.Contains(err.Error(), "is an overlaybd layer already") {
		t.Errorf("err = %v", err)
	}
}
