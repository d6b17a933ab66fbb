package trace

import (
	"strings"
	"testing"
)

const testDigest = "sha256:562852c4ae69c79b0b7481717906fa85bce4f93cc453117a88b2cb6665df2895"

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    SourceSpec
		wantErr string
	}{
		{"auto", SourceSpec{Kind: SourceAuto}, ""},
		{"none", SourceSpec{Kind: SourceNone}, ""},
		{testDigest, SourceSpec{Kind: SourceDigest, Digest: testDigest}, ""},
		{"web.djv", SourceSpec{Kind: SourceFile, Path: "web.djv"}, ""},
		{"/tmp/traces/a b.djv", SourceSpec{Kind: SourceFile, Path: "/tmp/traces/a b.djv"}, ""},
		{"./auto", SourceSpec{Kind: SourceFile, Path: "./auto"}, ""},
		{"", SourceSpec{}, "empty"},
		{"sha256:", SourceSpec{}, "64 lowercase hex"},
		{"sha256:abc", SourceSpec{}, "64 lowercase hex"},
		{strings.ToUpper(testDigest[:7]) + testDigest[7:], SourceSpec{Kind: SourceFile, Path: strings.ToUpper(testDigest[:7]) + testDigest[7:]}, ""},
		{"sha256:" + strings.ToUpper(testDigest[7:]), SourceSpec{}, "64 lowercase hex"},
		{testDigest + "0", SourceSpec{}, "64 lowercase hex"},
	} {
		got, err := ParseSource(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSource(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSource(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseSource: any string is parsed or refused without a panic, and
// what is accepted reads back as the string it came from.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"auto", "none", "", testDigest, "sha256:x", "f.djv"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := ParseSource(s)
		if err != nil {
			return
		}
		if src.String() != s {
			t.Fatalf("ParseSource(%q).String() = %q", s, src.String())
		}
		back, err := ParseSource(src.String())
		if err != nil || back != src {
			t.Fatalf("%q: %+v, then %+v, %v", s, src, back, err)
		}
		if src.Kind == SourceDigest && len(src.Digest) != len(testDigest) {
			t.Fatalf("digest %q accepted", src.Digest)
		}
	})
}
