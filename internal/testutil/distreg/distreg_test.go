package distreg

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestPushPullRange(t *testing.T) {
	addr := Start(t)
	img, _ := random.Image(100000, 1)
	ref, _ := name.ParseReference(addr + "/x/y:z")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	l, _ := img.Layers()
	ld, _ := l[0].Digest()
	rc, _ := l[0].Compressed()
	blob, _ := io.ReadAll(rc)
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/x/y/blobs/%s", addr, ld), nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, blob[100:200]) {
		t.Fatalf("range: %s, %d bytes", resp.Status, len(b))
	}
}
