package trace

import (
	"bytes"
	"encoding/base64"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// AnnotationData holds a small trace's encoded blob itself (base64), so
// that a start has the trace with the referrers list, without the round
// trip for the blob. The blob is pushed all the same: readers that do not
// know the annotation, and traces larger than MaxInline, fetch it.
const AnnotationData = "dev.dejavu.trace.data"

// MaxInline is the largest encoded trace carried in AnnotationData. Every
// referrers list of the image carries it, once per attached trace, so it
// stays small; the traces of the bench workloads take 2–10 KiB.
const MaxInline = 16 << 10

// inlineAnnotation is AnnotationData's value for an encoded trace, or ""
// when it is too large to carry.
func inlineAnnotation(enc []byte) string {
	if len(enc) > MaxInline {
		return ""
	}
	return base64.StdEncoding.EncodeToString(enc)
}

// inlineBlob reads AnnotationData's value as the blob the referrers list
// names, or nil when it does not hold exactly that blob. Like every
// annotation it is untrusted: a value that is too long, not base64, or
// not the named blob's bytes is ignored, and the blob is fetched instead.
func inlineBlob(v string, blob v1.Descriptor) []byte {
	if v == "" || blob.Size <= 0 || blob.Size > MaxInline || int64(len(v)) != int64(base64.StdEncoding.EncodedLen(int(blob.Size))) {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || int64(len(b)) != blob.Size {
		return nil
	}
	if h, _, err := v1.SHA256(bytes.NewReader(b)); err != nil || h != blob.Digest {
		return nil
	}
	return b
}
