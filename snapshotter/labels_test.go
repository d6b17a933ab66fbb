package snapshotter

import (
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/trace"
)

const dgst = "sha256:562852c4ae69c79b0b7481717906fa85bce4f93cc453117a88b2cb6665df2895"

func TestImageOf(t *testing.T) {
	for _, tc := range []struct {
		labels  map[string]string
		want    string
		wantErr bool
	}{
		{map[string]string{LabelImageRef: "127.0.0.1:5000/bb:v1", LabelManifestDigest: dgst}, "127.0.0.1:5000/bb@" + dgst, false},
		{map[string]string{LabelImageRef: "localhost:5000/a/b/c", LabelManifestDigest: dgst}, "localhost:5000/a/b/c@" + dgst, false},
		{map[string]string{LabelImageRef: "reg.example.com/app:v1@sha256:00", LabelManifestDigest: dgst}, "reg.example.com/app@" + dgst, false},
		// CRI's labels, when dejavu's are absent.
		{map[string]string{LabelCRIImageRef: "docker.io/library/app:1", LabelCRIManifestDigest: dgst}, "docker.io/library/app@" + dgst, false},
		{map[string]string{LabelImageRef: "r/app:v1"}, "", false},
		{map[string]string{}, "", false},
		{map[string]string{LabelImageRef: "r/app:v1", LabelManifestDigest: "md5:abc"}, "", true},
		{map[string]string{LabelImageRef: ":v1", LabelManifestDigest: dgst}, "", true},
	} {
		got, err := imageOf(tc.labels)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("imageOf(%v) = %q, %v; want %q, error %v", tc.labels, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestChoiceOf(t *testing.T) {
	for _, tc := range []struct {
		labels  map[string]string
		want    choice
		wantErr string
	}{
		{nil, choice{trace: trace.SourceSpec{Kind: trace.SourceAuto}}, ""},
		{map[string]string{LabelTrace: "none"}, choice{trace: trace.SourceSpec{Kind: trace.SourceNone}}, ""},
		{map[string]string{LabelTrace: dgst, LabelWorkload: "web"}, choice{trace: trace.SourceSpec{Kind: trace.SourceDigest, Digest: dgst}, workload: "web"}, ""},
		{map[string]string{LabelRecord: "web-1.v2"}, choice{trace: trace.SourceSpec{Kind: trace.SourceAuto}, record: "web-1.v2"}, ""},
		{map[string]string{LabelTrace: "/etc/passwd"}, choice{}, "want auto, none or sha256"},
		{map[string]string{LabelRecord: "../../etc/x"}, choice{}, "want a name"},
		{map[string]string{LabelRecord: "a/b"}, choice{}, "want a name"},
	} {
		got, err := choiceOf(tc.labels)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("choiceOf(%v): error %v, want one with %q", tc.labels, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("choiceOf(%v) = %+v, %v; want %+v", tc.labels, got, err, tc.want)
		}
	}
}

// FuzzLabels: labels come from image manifests and users; parsing them
// never panics, and an accepted image is repository@sha256 and a recording
// name never leaves the traces directory.
func FuzzLabels(f *testing.F) {
	f.Add("127.0.0.1:5000/bb:v1", dgst, "auto", "web")
	f.Add("a:1@b", "sha256:", "sha256:x", "../x")
	f.Fuzz(func(t *testing.T, ref, digest, tr, record string) {
		img, err := imageOf(map[string]string{LabelImageRef: ref, LabelManifestDigest: digest})
		if err == nil && img != "" && !strings.Contains(img, "@sha256:") {
			t.Fatalf("imageOf(%q, %q) = %q", ref, digest, img)
		}
		c, err := choiceOf(map[string]string{LabelTrace: tr, LabelRecord: record})
		if err == nil && (strings.ContainsAny(c.record, "/\\") || c.record == ".." || c.record == ".") {
			t.Fatalf("record name %q accepted", c.record)
		}
	})
}
