package imageref

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WriteImage stores img under r: pushed to a registry, or added to an OCI
// layout (created if missing), where it replaces the entry of the same name.
func WriteImage(ctx context.Context, r Ref, img v1.Image, opts ...Option) error {
	if img == nil {
		return fmt.Errorf("imageref: write %s: nil image", r)
	}
	if err := write(ctx, r, node{img: img}, makeOptions(opts)); err != nil {
		return fmt.Errorf("imageref: write %s: %w", r, err)
	}
	return nil
}

// WriteIndex stores ii and everything it refers to under r, as WriteImage
// does for an image.
func WriteIndex(ctx context.Context, r Ref, ii v1.ImageIndex, opts ...Option) error {
	if ii == nil {
		return fmt.Errorf("imageref: write %s: nil index", r)
	}
	if err := write(ctx, r, node{idx: ii}, makeOptions(opts)); err != nil {
		return fmt.Errorf("imageref: write %s: %w", r, err)
	}
	return nil
}

// write stores n under r; callers add the reference to errors.
func write(ctx context.Context, r Ref, n node, o options) error {
	if err := r.check(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.Kind == KindRegistry {
		return writeRemote(ctx, r, n, o)
	}
	return writeLayout(r, n)
}

func writeRemote(ctx context.Context, r Ref, n node, o options) error {
	ref, err := o.reference(r)
	if err != nil {
		return err
	}
	o.session = nil // a session's transports only pull
	ropts, err := o.remote(ctx, ref.Context())
	if err != nil {
		return err
	}
	if n.img != nil {
		return remote.Write(ref, n.img, ropts...)
	}
	return remote.WriteIndex(ref, n.idx, ropts...)
}

// writeLayout adds n to the layout at r.Dir. The new entry replaces the one
// carrying the same ref.name, or, when r has no tag, an unnamed entry for the
// same digest, so that writing twice does not pile up duplicates. Writers of
// one layout are not synchronised with each other.
func writeLayout(r Ref, n node) error {
	p, err := openOrCreateLayout(r.Dir)
	if err != nil {
		return err
	}
	var t partial.Describable = n.img
	if n.img == nil {
		t = n.idx
	}
	digest, err := t.Digest()
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	var (
		match    = func(d v1.Descriptor) bool { return d.Annotations[refNameAnnotation] == r.Tag }
		annotate []layout.Option
	)
	if r.Tag == "" {
		match = func(d v1.Descriptor) bool {
			return d.Digest == digest && d.Annotations[refNameAnnotation] == ""
		}
	} else {
		annotate = append(annotate, layout.WithAnnotations(map[string]string{refNameAnnotation: r.Tag}))
	}
	if n.img != nil {
		return p.ReplaceImage(n.img, match, annotate...)
	}
	return p.ReplaceIndex(n.idx, match, annotate...)
}

func openOrCreateLayout(dir string) (layout.Path, error) {
	p, err := layout.FromPath(dir)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("open layout: %w", err)
	}
	// Refuse to turn a file into a layout; a missing or empty directory, or
	// one holding other things, is fine, as with other OCI tools.
	if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
		return "", fmt.Errorf("%s exists and is not a directory", dir)
	}
	p, err = layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("create layout in %s: %w", filepath.Clean(dir), err)
	}
	return p, nil
}
