package snapshotter

import (
	"fmt"
	"strings"

	"github.com/dejavu-project/dejavu/trace"
)

// Labels under containerd.io/snapshot/ reach the snapshotter both from
// layer annotations at unpack time and from `ctr run --snapshotter-label`.
const (
	// LabelImageRef and LabelManifestDigest name the image a layer belongs
	// to; `dejavu image pull` sets them on every layer. CRI's own labels
	// (LabelCRIImageRef, LabelCRIManifestDigest) are understood too.
	LabelImageRef          = "containerd.io/snapshot/dejavu.image-ref"
	LabelManifestDigest    = "containerd.io/snapshot/dejavu.manifest-digest"
	LabelCRIImageRef       = "containerd.io/snapshot/cri.image-ref"
	LabelCRIManifestDigest = "containerd.io/snapshot/cri.manifest-digest"

	// LabelOverlaybdBlob marks an overlaybd layer (a manifest annotation).
	LabelOverlaybdBlob = "containerd.io/snapshot/overlaybd/blob-digest"

	// LabelTrace chooses a container's prefetch: auto (the trace attached
	// to the image; the default), none, or sha256:DIGEST of an attached
	// trace artifact.
	LabelTrace = "containerd.io/snapshot/dejavu.trace"
	// LabelWorkload picks among several attached traces (with auto).
	LabelWorkload = "containerd.io/snapshot/dejavu.workload"
	// LabelRecord records the reads of this container's start, until its
	// snapshot is removed, into ROOT/traces/NAME.trace.
	LabelRecord = "containerd.io/snapshot/dejavu.record"

	// labelRemote is set on the committed snapshot of an overlaybd layer:
	// the image it is read from, as repository@manifest-digest.
	labelRemote = "containerd.io/snapshot/dejavu.remote"
	// labelTargetRef is set by containerd's unpacker on the snapshot it
	// prepares for a layer: the name the layer will be committed as.
	labelTargetRef = "containerd.io/snapshot.ref"
)

// imageOf names the image a layer's labels point to, as
// repository@digest, or "" when they name none.
func imageOf(labels map[string]string) (string, error) {
	ref, dgst := labels[LabelImageRef], labels[LabelManifestDigest]
	if ref == "" {
		ref, dgst = labels[LabelCRIImageRef], labels[LabelCRIManifestDigest]
	}
	if ref == "" || dgst == "" {
		return "", nil
	}
	if !strings.HasPrefix(dgst, "sha256:") || len(dgst) != len("sha256:")+64 {
		return "", fmt.Errorf("manifest digest label %q is not a sha256 digest", dgst)
	}
	repo := ref
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	// A tag follows the last colon after the last slash.
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	if repo == "" {
		return "", fmt.Errorf("image reference label %q names no repository", ref)
	}
	return repo + "@" + dgst, nil
}

// choice is what a container's labels ask of its image mount.
type choice struct {
	trace    trace.SourceSpec
	workload string
	record   string
}

func choiceOf(labels map[string]string) (choice, error) {
	c := choice{workload: labels[LabelWorkload], record: labels[LabelRecord]}
	if v := labels[LabelTrace]; v != "" {
		// A file would be the snapshotter's to read: labels come from
		// images and users, so they name only what is attached to the
		// image.
		src, err := trace.ParseSource(v)
		if err != nil || src.Kind == trace.SourceFile {
			return c, fmt.Errorf("label %s=%q: want auto, none or sha256:DIGEST of an attached trace", LabelTrace, v)
		}
		c.trace = src
	}
	// The name is the recorded trace's workload, and its file's name.
	if c.record != "" && trace.ValidWorkload(c.record) != nil {
		return c, fmt.Errorf("label %s=%q: want a name of letters, digits, '.', '_' or '-'", LabelRecord, c.record)
	}
	return c, nil
}
