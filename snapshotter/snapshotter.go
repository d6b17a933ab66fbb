package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/storage"
	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/prefetch"
)

// Option configures New.
type Option func(*config)

type config struct {
	mountOpts []lazymount.Option
	log       *slog.Logger
	unmounted func(image string, r prefetch.Report)
	rules     *Config
}

// WithConfig chooses containers' prefetch by image (see Config) where
// their labels do not (default: labels only).
func WithConfig(c *Config) Option { return func(cfg *config) { cfg.rules = c } }

// WithMountOptions adds options to every image mount: the cache, how
// registries are reached, metrics, prefetch tuning.
func WithMountOptions(o ...lazymount.Option) Option {
	return func(c *config) { c.mountOpts = append(c.mountOpts, o...) }
}

// WithUnmounted is called when an image is unmounted, with the outcome of
// its prefetch (zero without one).
func WithUnmounted(f func(image string, r prefetch.Report)) Option {
	return func(c *config) { c.unmounted = f }
}

// WithLogger sets the logger, which the image mounts log through too
// (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Snapshotter implements containerd's snapshots.Snapshotter. Its state
// lives under one root directory: the snapshot metadata, each snapshot's
// directories, the image mounts and their state, and recorded traces.
type Snapshotter struct {
	root   string
	ms     *storage.MetaStore
	log    *slog.Logger
	images *imageMounts
	rules  *Config
	lock   *os.File // held while open
}

var _ snapshots.Snapshotter = (*Snapshotter)(nil)

// New opens (or creates) a snapshotter under root, cleans up what an
// earlier process that died left behind, and mounts again the images that
// existing containers' snapshots stand on.
func New(ctx context.Context, root string, opts ...Option) (*Snapshotter, error) {
	c := config{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"snapshots", "mnt", "state", "traces"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshotter: %w", err)
		}
	}
	// One snapshotter to a root: a second would tear down the first's
	// mounts as left by a dead process.
	lock, err := os.OpenFile(filepath.Join(root, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("snapshotter: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("snapshotter: another snapshotter uses %s: %w", root, err)
	}
	ms, err := storage.NewMetaStore(filepath.Join(root, "metadata.db"))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("snapshotter: metadata: %w", err)
	}
	s := &Snapshotter{root: root, ms: ms, log: c.log, lock: lock, rules: c.rules}
	s.images = newImageMounts(root, c.mountOpts, c.log)
	s.images.unmounted = c.unmounted
	if err := s.images.cleanup(ctx); err != nil {
		c.log.Warn("snapshotter: cleaning up after an earlier process", "err", err)
	}
	// Containers' snapshots from before a restart get their images back
	// in the background; their Mounts calls wait for them.
	go func() {
		if err := s.remount(context.WithoutCancel(ctx)); err != nil {
			c.log.Warn("snapshotter: mounting images for existing snapshots", "err", err)
		}
	}()
	return s, nil
}

func (s *Snapshotter) upperPath(id string) string {
	return filepath.Join(s.root, "snapshots", id, "fs")
}
func (s *Snapshotter) workPath(id string) string {
	return filepath.Join(s.root, "snapshots", id, "work")
}

// Stat returns the info of a snapshot.
func (s *Snapshotter) Stat(ctx context.Context, key string) (info snapshots.Info, err error) {
	err = s.ms.WithTransaction(ctx, false, func(ctx context.Context) error {
		_, info, _, err = storage.GetInfo(ctx, key)
		return err
	})
	return info, err
}

// Update changes a snapshot's labels.
func (s *Snapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (out snapshots.Info, err error) {
	err = s.ms.WithTransaction(ctx, true, func(ctx context.Context) error {
		out, err = storage.UpdateInfo(ctx, info, fieldpaths...)
		return err
	})
	return out, err
}

// Usage is the disk space a snapshot's own directory takes: nothing for an
// overlaybd layer, whose bytes live in the blob cache.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	var (
		id    string
		info  snapshots.Info
		usage snapshots.Usage
	)
	if err := s.ms.WithTransaction(ctx, false, func(ctx context.Context) (err error) {
		id, info, usage, err = storage.GetInfo(ctx, key)
		return err
	}); err != nil {
		return snapshots.Usage{}, err
	}
	if info.Kind == snapshots.KindActive {
		du, err := fs.DiskUsage(ctx, s.upperPath(id))
		if err != nil {
			return snapshots.Usage{}, err
		}
		usage = snapshots.Usage(du)
	}
	return usage, nil
}

// Prepare creates an active snapshot on parent. For an overlaybd layer that
// containerd is unpacking, it commits the layer as a remote snapshot at
// once and answers that it already exists, so the blob is never fetched.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	var base snapshots.Info
	for _, o := range opts {
		if err := o(&base); err != nil {
			return nil, err
		}
	}
	if target := base.Labels[labelTargetRef]; target != "" && base.Labels[LabelOverlaybdBlob] != "" {
		img, err := imageOf(base.Labels)
		if err != nil {
			return nil, fmt.Errorf("snapshotter: layer %s: %w", target, err)
		}
		if img == "" {
			return nil, fmt.Errorf("snapshotter: overlaybd layer %s: no image reference label (%s and %s): pull it with `dejavu image pull`, or through CRI with snapshot annotations on: %w",
				target, LabelImageRef, LabelManifestDigest, errdefs.ErrInvalidArgument)
		}
		if err := s.commitRemote(ctx, key, parent, target, img, base.Labels); err != nil && !errdefs.IsAlreadyExists(err) {
			return nil, err
		}
		s.log.Debug("snapshotter: overlaybd layer kept remote", "target", target, "image", img)
		return nil, fmt.Errorf("target snapshot %q: %w", target, errdefs.ErrAlreadyExists)
	}
	return s.create(ctx, snapshots.KindActive, key, parent, opts)
}

// View creates a read-only snapshot on parent.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshots.KindView, key, parent, opts)
}

// commitRemote records an overlaybd layer as committed without unpacking
// it.
func (s *Snapshotter) commitRemote(ctx context.Context, key, parent, target, img string, labels map[string]string) error {
	return s.ms.WithTransaction(ctx, true, func(ctx context.Context) error {
		if parent != "" {
			_, pinfo, _, err := storage.GetInfo(ctx, parent)
			if err != nil {
				return err
			}
			if pinfo.Labels[labelRemote] == "" {
				return fmt.Errorf("snapshotter: overlaybd layer %s on a layer that is not overlaybd (%s): %w", target, parent, errdefs.ErrNotImplemented)
			}
		}
		if _, err := storage.CreateSnapshot(ctx, snapshots.KindActive, key, parent); err != nil {
			return err
		}
		l := map[string]string{}
		for k, v := range labels {
			l[k] = v
		}
		l[labelRemote] = img
		_, err := storage.CommitActive(ctx, key, target, snapshots.Usage{}, snapshots.WithLabels(l))
		return err
	})
}

// create makes an active or view snapshot, and for one on an overlaybd
// image, mounts the image first.
func (s *Snapshotter) create(ctx context.Context, kind snapshots.Kind, key, parent string, opts []snapshots.Opt) (_ []mount.Mount, err error) {
	var (
		snap storage.Snapshot
		info snapshots.Info
		low  lowers
	)
	td, err := os.MkdirTemp(filepath.Join(s.root, "snapshots"), "new-")
	if err != nil {
		return nil, fmt.Errorf("snapshotter: %w", err)
	}
	defer os.RemoveAll(td) // renamed away on success
	if err := os.Mkdir(filepath.Join(td, "fs"), 0o755); err != nil {
		return nil, err
	}
	if kind == snapshots.KindActive {
		if err := os.Mkdir(filepath.Join(td, "work"), 0o711); err != nil {
			return nil, err
		}
	}
	if err := s.ms.WithTransaction(ctx, true, func(ctx context.Context) (err error) {
		if snap, err = storage.CreateSnapshot(ctx, kind, key, parent, opts...); err != nil {
			return err
		}
		if _, info, _, err = storage.GetInfo(ctx, key); err != nil {
			return err
		}
		if low, err = s.lowers(ctx, key, snap); err != nil {
			return err
		}
		if _, err := choiceOf(info.Labels); err != nil {
			return fmt.Errorf("snapshotter: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		return os.Rename(td, filepath.Join(s.root, "snapshots", snap.ID))
	}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if rerr := s.Remove(context.WithoutCancel(ctx), key); rerr != nil {
				s.log.Warn("snapshotter: removing a snapshot whose image did not mount", "key", key, "err", rerr)
			}
		}
	}()
	return s.mounts(ctx, key, snap, info, low)
}

// Mounts returns the mounts of an active or view snapshot, mounting its
// image first when it is not mounted (after a restart).
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	var (
		snap storage.Snapshot
		info snapshots.Info
		low  lowers
	)
	if err := s.ms.WithTransaction(ctx, false, func(ctx context.Context) (err error) {
		if snap, err = storage.GetSnapshot(ctx, key); err != nil {
			return err
		}
		if _, info, _, err = storage.GetInfo(ctx, key); err != nil {
			return err
		}
		low, err = s.lowers(ctx, key, snap)
		return err
	}); err != nil {
		return nil, err
	}
	return s.mounts(ctx, key, snap, info, low)
}

// lowers are the directories below a snapshot, top first; image, when set,
// is the overlaybd image they end in.
type lowers struct {
	dirs  []string
	image *remoteLayer
}

type remoteLayer struct {
	id, name string
	image    string // repository@digest
	depth    int    // layers in its chain, itself included
}

// lowers walks the parents from the top until the first overlaybd layer:
// that layer and those under it are one mounted image.
func (s *Snapshotter) lowers(ctx context.Context, key string, snap storage.Snapshot) (lowers, error) {
	var l lowers
	if len(snap.ParentIDs) == 0 {
		return l, nil
	}
	// The parent's name, then each parent's parent.
	_, info, _, err := storage.GetInfo(ctx, key)
	if err != nil {
		return l, err
	}
	name := info.Parent
	for i, id := range snap.ParentIDs {
		_, pinfo, _, err := storage.GetInfo(ctx, name)
		if err != nil {
			return l, err
		}
		if img := pinfo.Labels[labelRemote]; img != "" {
			l.image = &remoteLayer{id: id, name: name, image: img, depth: len(snap.ParentIDs) - i}
			return l, nil
		}
		l.dirs = append(l.dirs, s.upperPath(id))
		name = pinfo.Parent
	}
	return l, nil
}

// mounts builds the mounts of an active or view snapshot.
func (s *Snapshotter) mounts(ctx context.Context, key string, snap storage.Snapshot, info snapshots.Info, low lowers) ([]mount.Mount, error) {
	dirs := low.dirs
	if low.image != nil {
		ch, err := choiceOf(info.Labels)
		if err != nil {
			return nil, fmt.Errorf("snapshotter: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		ch = s.rules.choose(low.image.image, info.Labels, ch)
		dir, err := s.images.acquire(ctx, key, *low.image, ch)
		if err != nil {
			return nil, fmt.Errorf("snapshotter: mounting %s for %s: %w", low.image.image, key, err)
		}
		dirs = append(dirs, dir)
	}
	if snap.Kind == snapshots.KindActive && len(dirs) == 0 {
		return []mount.Mount{{Source: s.upperPath(snap.ID), Type: "bind", Options: []string{"rw", "rbind"}}}, nil
	}
	if snap.Kind == snapshots.KindView {
		switch len(dirs) {
		case 0:
			return []mount.Mount{{Source: s.upperPath(snap.ID), Type: "bind", Options: []string{"ro", "rbind"}}}, nil
		case 1:
			return []mount.Mount{{Source: dirs[0], Type: "bind", Options: []string{"ro", "rbind"}}}, nil
		}
		return []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(dirs, ":")}}}, nil
	}
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"workdir=" + s.workPath(snap.ID), "upperdir=" + s.upperPath(snap.ID), "lowerdir=" + strings.Join(dirs, ":"),
	}}}, nil
}

// Commit turns an active snapshot into a committed one named name.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	err := s.ms.WithTransaction(ctx, true, func(ctx context.Context) error {
		id, _, _, err := storage.GetInfo(ctx, key)
		if err != nil {
			return err
		}
		if overlaybdPayload(s.upperPath(id)) {
			return fmt.Errorf("snapshotter: %s is an overlaybd layer unpacked as the tar it is wrapped in (a plain `ctr image pull`?): pull overlaybd images with `dejavu image pull`, which keeps their layers remote: %w",
				name, errdefs.ErrNotImplemented)
		}
		du, err := fs.DiskUsage(ctx, s.upperPath(id))
		if err != nil {
			return err
		}
		_, err = storage.CommitActive(ctx, key, name, snapshots.Usage(du), opts...)
		return err
	})
	if err != nil {
		return err
	}
	s.images.release(key)
	return nil
}

// overlaybdPayload reports whether dir holds nothing but the file an
// overlaybd layer's tar wrapper carries: such a layer was unpacked by a
// pull that did not tell the snapshotter where the image is.
func overlaybdPayload(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) == 1 && entries[0].Name() == "overlaybd.commit" && entries[0].Type().IsRegular()
}

// Remove deletes a snapshot and, when it was the last on its image mount,
// unmounts the image.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	var id string
	if err := s.ms.WithTransaction(ctx, true, func(ctx context.Context) (err error) {
		id, _, err = storage.Remove(ctx, key)
		return err
	}); err != nil {
		return err
	}
	s.images.release(key)
	if err := os.RemoveAll(filepath.Join(s.root, "snapshots", id)); err != nil {
		return fmt.Errorf("snapshotter: removing snapshot %s: %w", key, err)
	}
	return nil
}

// Walk calls fn for every snapshot matching the filters.
func (s *Snapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	return s.ms.WithTransaction(ctx, false, func(ctx context.Context) error {
		return storage.WalkInfo(ctx, fn, filters...)
	})
}

// Cleanup removes snapshot directories that no snapshot owns (left by a
// crash between the metadata and the directory).
func (s *Snapshotter) Cleanup(ctx context.Context) error {
	var ids map[string]string
	if err := s.ms.WithTransaction(ctx, false, func(ctx context.Context) (err error) {
		ids, err = storage.IDMap(ctx)
		return err
	}); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if _, ok := ids[e.Name()]; ok {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.root, "snapshots", e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close unmounts every image and closes the metadata. Snapshots stay: the
// next New mounts what they need again.
func (s *Snapshotter) Close() error {
	err := s.images.closeAll()
	err = errors.Join(err, s.ms.Close())
	s.lock.Close() // releases the lock; a second Close finds it closed
	return err
}

// remount mounts the images that active and view snapshots stand on.
func (s *Snapshotter) remount(ctx context.Context) error {
	var keys []string
	if err := s.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted && info.Parent != "" {
			keys = append(keys, info.Name)
		}
		return nil
	}); err != nil && !errdefs.IsNotFound(err) { // not found: no snapshot yet
		return err
	}
	var errs []error
	for _, k := range keys {
		if _, err := s.Mounts(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Mounted is how many images are mounted now (shared mounts count once).
func (s *Snapshotter) Mounted() int { return s.images.mounted() }
