package registry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestSurvivesRestart pushes an image and a referrer, restarts the registry
// on the same directory and finds both again, by tag, by digest and through
// the referrers API.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Start("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.Addr + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	dig, _ := img.Digest()
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	art = mutate.ConfigMediaType(art, "application/vnd.oci.empty.v1+json")
	art = mutate.Annotations(art, map[string]string{"test": "referrer"}).(v1.Image)
	art = mutate.Subject(art, *desc).(v1.Image)
	artDig, _ := art.Digest()
	if err := remote.Write(ref.Context().Digest(artDig.String()), art); err != nil {
		t.Fatal(err)
	}
	checkReferrers(t, s.Addr, dig, artDig)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, journalName)); err != nil {
		t.Fatal(err)
	}

	s, err = Start("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, r := range []string{s.Addr + "/app:v1", s.Addr + "/app@" + dig.String()} {
		got, err := remote.Image(parseRef(t, r))
		if err != nil {
			t.Fatalf("after restart, %s: %v", r, err)
		}
		gd, _ := got.Digest()
		if gd != dig {
			t.Fatalf("%s: digest %s, want %s", r, gd, dig)
		}
		layers, _ := got.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			rc.Close()
		}
	}
	checkReferrers(t, s.Addr, dig, artDig)
}

func checkReferrers(t *testing.T, addr string, subject, want v1.Hash) {
	t.Helper()
	idx, err := remote.Referrers(parseRef(t, addr+"/app@"+subject.String()).(name.Digest))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want {
		t.Fatalf("referrers of %s: %+v", subject, im.Manifests)
	}
}

func TestTornJournalLine(t *testing.T) {
	dir := t.TempDir()
	s, err := Start("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(100, 1)
	if err := remote.Write(parseRef(t, s.Addr+"/a:b"), img); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"op":"put","repo":"a","ref":"c","bo`)
	f.Close()
	s, err = Start("127.0.0.1:0", dir)
	if err != nil {
		t.Fatalf("a torn last line must not stop the registry: %v", err)
	}
	defer s.Close()
	if _, err := remote.Image(parseRef(t, s.Addr+"/a:b")); err != nil {
		t.Fatal(err)
	}
}

func parseRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBlobRanges: ranges of a blob are answered from the blob file,
// including one at the very end and HEAD.
func TestBlobRanges(t *testing.T) {
	s, err := Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	img, _ := random.Image(1<<20, 1)
	if err := remote.Write(parseRef(t, s.Addr+"/r:t"), img); err != nil {
		t.Fatal(err)
	}
	l, _ := img.Layers()
	d, _ := l[0].Digest()
	rc, _ := l[0].Compressed()
	blob, _ := io.ReadAll(rc)
	url := "http://" + s.Addr + "/v2/r/blobs/" + d.String()
	for _, rg := range [][2]int{{0, 9}, {len(blob) - 10, len(blob) - 1}, {1000, 70000}} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, blob[rg[0]:rg[1]+1]) || resp.Header.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("range %v: %s, %d bytes", rg, resp.Status, len(b))
		}
	}
	resp, err := http.Head(url)
	if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(blob)) {
		t.Fatalf("HEAD: %v %v", err, resp)
	}
	resp, _ = http.Get("http://" + s.Addr + "/v2/r/blobs/sha256:" + strings.Repeat("0", 64))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing blob: %s", resp.Status)
	}
}
