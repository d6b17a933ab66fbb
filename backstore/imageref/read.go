package imageref

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// refNameAnnotation names an entry of a layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// maxIndexDepth bounds the nesting of indexes followed while looking for a
// platform, so that a malicious index cannot recurse forever.
const maxIndexDepth = 8

// node is what a reference names: an image or an index, with the descriptor
// it was found under. Exactly one of img and idx is set.
type node struct {
	desc v1.Descriptor
	img  v1.Image
	idx  v1.ImageIndex
}

// Image loads the image that r names. When r names an index, the image for
// the platform of WithPlatform (default DefaultPlatform) is taken from it.
func Image(ctx context.Context, r Ref, opts ...Option) (v1.Image, error) {
	o := makeOptions(opts)
	n, err := load(ctx, r, o)
	if err != nil {
		return nil, err
	}
	if n.img != nil {
		return n.img, nil
	}
	img, err := forPlatform(n.idx, o.platform, 0)
	if err != nil {
		return nil, fmt.Errorf("imageref: %s: %w", r, err)
	}
	return img, nil
}

// Index loads the index that r names, and fails if r names a single image.
func Index(ctx context.Context, r Ref, opts ...Option) (v1.ImageIndex, error) {
	n, err := load(ctx, r, makeOptions(opts))
	if err != nil {
		return nil, err
	}
	if n.idx == nil {
		return nil, fmt.Errorf("imageref: %s: is an image (%s), not an index", r, n.desc.MediaType)
	}
	return n.idx, nil
}

// Descriptor returns the descriptor of what r names (image or index) as it
// stands, without resolving an index to a platform.
func Descriptor(ctx context.Context, r Ref, opts ...Option) (v1.Descriptor, error) {
	n, err := load(ctx, r, makeOptions(opts))
	if err != nil {
		return v1.Descriptor{}, err
	}
	return n.desc, nil
}

func load(ctx context.Context, r Ref, o options) (node, error) {
	if err := r.check(); err != nil {
		return node{}, err
	}
	if err := ctx.Err(); err != nil {
		return node{}, fmt.Errorf("imageref: %s: %w", r, err)
	}
	var (
		n   node
		err error
	)
	if r.Kind == KindRegistry {
		n, err = loadRemote(ctx, r, o)
	} else {
		n, err = loadLayout(r)
	}
	if err != nil {
		return node{}, fmt.Errorf("imageref: %s: %w", r, err)
	}
	return n, nil
}

func loadRemote(ctx context.Context, r Ref, o options) (node, error) {
	ref, err := o.reference(r)
	if err != nil {
		return node{}, err
	}
	ropts, err := o.remote(ctx, ref.Context())
	if err != nil {
		return node{}, err
	}
	d, err := remote.Get(ref, ropts...)
	if err != nil {
		return node{}, fmt.Errorf("fetch manifest: %w", err)
	}
	n := node{desc: d.Descriptor}
	switch mt := d.MediaType; {
	case mt.IsIndex():
		n.idx, err = d.ImageIndex()
	case mt.IsImage():
		n.img, err = d.Image()
	default:
		return node{}, fmt.Errorf("unsupported manifest media type %q", mt)
	}
	return n, err
}

// loadLayout reads the entry r names through the checked layout reader
// (layout.go): blobs are regular files matching their digests.
func loadLayout(r Ref) (node, error) {
	im, err := readIndexJSON(r.Dir)
	if err != nil {
		return node{}, err
	}
	desc, err := selectEntry(im.Manifests, r.Tag)
	if err != nil {
		return node{}, err
	}
	n := node{desc: desc}
	switch mt := desc.MediaType; {
	case mt.IsIndex():
		n.idx, err = newLayoutIndex(r.Dir, desc)
	case mt.IsImage():
		n.img, err = newLayoutImage(r.Dir, desc)
	default:
		return node{}, fmt.Errorf("entry %s has unsupported media type %q", desc.Digest, mt)
	}
	if err != nil {
		return node{}, fmt.Errorf("load %s: %w", desc.Digest, err)
	}
	return n, nil
}

// selectEntry picks the index.json entry named tag, or the only entry when
// tag is empty.
func selectEntry(entries []v1.Descriptor, tag string) (v1.Descriptor, error) {
	if len(entries) == 0 {
		return v1.Descriptor{}, errors.New("index.json lists no manifests")
	}
	if tag == "" {
		if len(entries) != 1 {
			return v1.Descriptor{}, fmt.Errorf("index.json lists %d manifests; name one with :TAG (have: %s)", len(entries), entryNames(entries))
		}
		return entries[0], nil
	}
	var found []v1.Descriptor
	for _, d := range entries {
		if d.Annotations[refNameAnnotation] == tag {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("no manifest named %q in index.json (have: %s)", tag, entryNames(entries))
	case 1:
		return found[0], nil
	default:
		return v1.Descriptor{}, fmt.Errorf("%d manifests named %q in index.json", len(found), tag)
	}
}

// entryNames lists the ref.name annotations of entries for error messages,
// summing up the unnamed ones.
func entryNames(entries []v1.Descriptor) string {
	var names []string
	unnamed := 0
	for _, d := range entries {
		if n := d.Annotations[refNameAnnotation]; n != "" {
			names = append(names, n)
		} else {
			unnamed++
		}
	}
	if unnamed > 0 {
		names = append(names, fmt.Sprintf("%d unnamed", unnamed))
	}
	return strings.Join(names, ", ")
}

// forPlatform takes the image for p out of idx, descending into nested
// indexes.
func forPlatform(idx v1.ImageIndex, p v1.Platform, depth int) (v1.Image, error) {
	if depth >= maxIndexDepth {
		return nil, fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		have = append(have, d.Platform.String())
		if !d.Platform.Satisfies(p) {
			continue
		}
		switch {
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("load %s image %s: %w", d.Platform, d.Digest, err)
			}
			return img, nil
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("load %s index %s: %w", d.Platform, d.Digest, err)
			}
			return forPlatform(child, p, depth+1)
		}
	}
	if len(have) == 0 {
		return nil, fmt.Errorf("index has no platform-annotated images to pick %s from", p.String())
	}
	return nil, fmt.Errorf("no image for platform %s in index (have: %s)", p.String(), strings.Join(have, ", "))
}
