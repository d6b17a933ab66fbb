package imageref

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// WithPlatformOnly makes Copy, when the source is an index, copy only the
// image that WithPlatform (default DefaultPlatform) selects from it, as Image
// would, instead of the whole index. A source that is an image is copied
// as it is either way. The default is false: the whole index.
func WithPlatformOnly(only bool) Option {
	return func(o *options) { o.onePlatform = only }
}

// Copy copies the image or index that src names to dst, between registries
// and layouts in any direction, and returns its digest. Manifests and blobs
// are copied as they are: the digest is the same at both ends, a Docker
// manifest stays a Docker manifest, and copying an index copies every image
// it lists (or, with WithPlatformOnly, the one image for the platform).
func Copy(ctx context.Context, src, dst Ref, opts ...Option) (v1.Hash, error) {
	if err := dst.check(); err != nil {
		return v1.Hash{}, err
	}
	o := makeOptions(opts)
	n, err := load(ctx, src, o)
	if err != nil {
		return v1.Hash{}, err
	}
	if o.onePlatform && n.idx != nil {
		if n, err = platformNode(n.idx, o.platform); err != nil {
			return v1.Hash{}, fmt.Errorf("imageref: %s: %w", src, err)
		}
	}
	// A registry refuses a manifest pushed under another digest; say why
	// before uploading every blob for nothing.
	if d, ok := dst.Name.(name.Digest); ok && dst.Kind == KindRegistry && d.DigestStr() != n.desc.Digest.String() {
		return v1.Hash{}, fmt.Errorf("imageref: copy %s to %s: source digest is %s", src, dst, n.desc.Digest)
	}
	if err := write(ctx, dst, n, o); err != nil {
		return v1.Hash{}, fmt.Errorf("imageref: copy %s to %s: %w", src, dst, err)
	}
	return n.desc.Digest, nil
}

// platformNode is the image for p out of idx, with its descriptor.
func platformNode(idx v1.ImageIndex, p v1.Platform) (node, error) {
	img, err := forPlatform(idx, p, 0)
	if err != nil {
		return node{}, err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return node{}, fmt.Errorf("describe the %s image: %w", p.String(), err)
	}
	return node{desc: *desc, img: img}, nil
}
