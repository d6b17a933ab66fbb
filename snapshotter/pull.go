package snapshotter

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOption configures Pull.
type PullOption func(*pullConfig)

type pullConfig struct {
	namespace   string
	snapshotter string
	plainHTTP   bool
	platform    string
}

// WithNamespace sets the containerd namespace (default "default").
func WithNamespace(ns string) PullOption { return func(c *pullConfig) { c.namespace = ns } }

// WithSnapshotterName is the name containerd knows the snapshotter by
// (default "dejavu").
func WithSnapshotterName(n string) PullOption { return func(c *pullConfig) { c.snapshotter = n } }

// WithPlainHTTP reaches every registry over plain HTTP (loopback
// registries always are).
func WithPlainHTTP(on bool) PullOption { return func(c *pullConfig) { c.plainHTTP = on } }

// WithPullPlatform pulls the image for another platform, as os/arch.
func WithPullPlatform(p string) PullOption { return func(c *pullConfig) { c.platform = p } }

// Pull pulls ref into the containerd at address and unpacks it with the
// dejavu snapshotter. Every layer descriptor carries the image's reference
// and manifest digest as snapshot labels, so that the snapshotter keeps
// overlaybd layers remote: their blobs are never downloaded. Layers of
// other images are fetched and unpacked as usual.
func Pull(ctx context.Context, address, ref string, opts ...PullOption) (images.Image, error) {
	c := pullConfig{namespace: "default", snapshotter: "dejavu"}
	for _, o := range opts {
		o(&c)
	}
	client, err := containerd.New(address, containerd.WithDefaultNamespace(c.namespace))
	if err != nil {
		return images.Image{}, fmt.Errorf("pull: containerd at %s: %w", address, err)
	}
	defer client.Close()
	plain := docker.MatchLocalhost
	if c.plainHTTP {
		plain = docker.MatchAllHosts
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(plain))})
	ropts := []containerd.RemoteOpt{
		containerd.WithResolver(resolver),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(c.snapshotter),
		containerd.WithImageHandlerWrapper(labelLayers(ref)),
	}
	if c.platform != "" {
		ropts = append(ropts, containerd.WithPlatform(c.platform))
	}
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return images.Image{}, fmt.Errorf("pull: %w", err)
	}
	defer done(context.WithoutCancel(ctx))
	img, err := client.Pull(ctx, ref, ropts...)
	if err != nil {
		return images.Image{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img.Metadata(), nil
}

// labelLayers annotates the layers of every manifest with the image
// reference and the manifest's digest; containerd's unpacker hands
// annotations under containerd.io/snapshot/ to the snapshotter as labels.
func labelLayers(ref string) func(images.Handler) images.Handler {
	return func(h images.Handler) images.Handler {
		return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			children, err := h.Handle(ctx, desc)
			if err != nil || !images.IsManifestType(desc.MediaType) {
				return children, err
			}
			for i := range children {
				if !images.IsLayerType(children[i].MediaType) {
					continue
				}
				a := make(map[string]string, len(children[i].Annotations)+2)
				for k, v := range children[i].Annotations {
					a[k] = v
				}
				a[LabelImageRef] = ref
				a[LabelManifestDigest] = desc.Digest.String()
				children[i].Annotations = a
			}
			return children, nil
		})
	}
}
