package registry

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusesGarbageManifests: bytes that are no manifest of the type they
// are sent as are refused (they used to be stored, 201), and nothing of
// them is journaled.
func TestRefusesGarbageManifests(t *testing.T) {
	dir := t.TempDir()
	s, err := Start("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct{ ct, body string }{
		{"application/vnd.oci.image.manifest.v1+json", "not json"},
		{"application/vnd.oci.image.manifest.v1+json", "{}"},
		{"application/vnd.oci.image.index.v1+json", `{"schemaVersion": 1}`},
		{"text/plain", `{"schemaVersion": 2}`},
	} {
		req, _ := http.NewRequest(http.MethodPut, "http://"+s.Addr+"/v2/app/manifests/v1", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT %q as %s: %d, want 400", tc.body, tc.ct, resp.StatusCode)
		}
	}
	resp, err := http.Get("http://" + s.Addr + "/v2/app/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET after the refused PUTs: %d, want 404", resp.StatusCode)
	}
}

// TestFailedUploadLeavesNothing: an upload whose body does not match its
// digest fails and leaves no upload-* file in the store.
func TestFailedUploadLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Start("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wrong := "sha256:" + strings.Repeat("0", 64)
	resp, err := http.Post("http://"+s.Addr+"/v2/app/blobs/uploads/?digest="+wrong, "application/octet-stream", strings.NewReader("some bytes"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("upload with a wrong digest: %d", resp.StatusCode)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "blobs", "upload-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
