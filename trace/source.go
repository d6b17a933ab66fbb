package trace

import (
	"errors"
	"fmt"
	"strings"
)

// SourceKind is where the trace to prefetch comes from.
type SourceKind int

// Source kinds.
const (
	SourceAuto   SourceKind = iota // the trace attached to the image, if any
	SourceNone                     // no trace: no prefetch
	SourceFile                     // a trace file
	SourceDigest                   // a trace artifact attached to the image, by digest
)

// SourceSpec names a trace to prefetch, as users write it: auto, none, a
// file's path, or sha256:DIGEST of an attached trace artifact. The zero
// value is auto.
type SourceSpec struct {
	Kind   SourceKind
	Path   string // with SourceFile
	Digest string // with SourceDigest: sha256: and 64 hex digits
}

// ParseSource reads auto, none, sha256:DIGEST or a file's path. Whether
// the file exists is the caller's to check: a mount looks for it later.
func ParseSource(s string) (SourceSpec, error) {
	switch {
	case s == "auto":
		return SourceSpec{Kind: SourceAuto}, nil
	case s == "none":
		return SourceSpec{Kind: SourceNone}, nil
	case s == "":
		return SourceSpec{}, errors.New("trace: empty trace source: want auto, none, a FILE or sha256:DIGEST")
	case strings.HasPrefix(s, "sha256:"):
		if !isHex64(strings.TrimPrefix(s, "sha256:")) {
			return SourceSpec{}, fmt.Errorf("trace: trace source %q: a digest is sha256: and 64 lowercase hex digits", s)
		}
		return SourceSpec{Kind: SourceDigest, Digest: s}, nil
	}
	return SourceSpec{Kind: SourceFile, Path: s}, nil
}

// String is the source as ParseSource reads it.
func (s SourceSpec) String() string {
	switch s.Kind {
	case SourceAuto:
		return "auto"
	case SourceNone:
		return "none"
	case SourceDigest:
		return s.Digest
	}
	return s.Path
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
