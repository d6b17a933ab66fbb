package snapshotter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/record"
	"github.com/dejavu-project/dejavu/trace"
)

// imageMounts are the overlaybd images mounted for containers' snapshots.
// Containers on the same image share one mount (one page cache, one
// prefetch); a container whose start is recorded gets a mount of its own,
// so that every read of its start reaches the recorder.
type imageMounts struct {
	root string
	opts []lazymount.Option
	log  *slog.Logger
	// ctx outlives the requests that mount: prefetch goes on after them.
	ctx    context.Context
	cancel context.CancelFunc

	unmounted func(image string, r prefetch.Report)

	mu      sync.Mutex
	closed  bool
	closing int                    // mounts being torn down
	byKey   map[string]*imageMount // by mount key
	users   map[string]string      // snapshot key → mount key
}

type imageMount struct {
	key   string
	image string
	dir   string
	users map[string]bool
	ready chan struct{} // closed when mounted or failed
	m     *lazymount.Mount
	err   error
	// record, when set, is the trace being recorded and its name.
	rec        *record.Capture
	recordName string
}

func newImageMounts(root string, opts []lazymount.Option, log *slog.Logger) *imageMounts {
	ctx, cancel := context.WithCancel(context.Background())
	return &imageMounts{root: root, opts: opts, log: log, ctx: ctx, cancel: cancel,
		byKey: map[string]*imageMount{}, users: map[string]string{}}
}

func (im *imageMounts) stateDir() string { return filepath.Join(im.root, "state") }

// TracePath is where a recording named name is written.
func TracePath(root, name string) string { return filepath.Join(root, "traces", name+".djv") }

// acquire mounts the image of layer for snapshot user, or joins the mount
// there is, and returns the directory it is mounted at.
func (im *imageMounts) acquire(ctx context.Context, user string, layer remoteLayer, ch choice) (string, error) {
	key := "img-" + layer.id
	if ch.record != "" {
		sum := sha256.Sum256([]byte(user))
		key = "rec-" + hex.EncodeToString(sum[:8])
	}
	im.mu.Lock()
	if im.closed {
		im.mu.Unlock()
		return "", errors.New("snapshotter is closing")
	}
	m := im.byKey[key]
	if prev, ok := im.users[user]; ok {
		m = im.byKey[prev]
	} else {
		if m == nil {
			m = &imageMount{key: key, image: layer.image, dir: filepath.Join(im.root, "mnt", key), users: map[string]bool{}, ready: make(chan struct{})}
			im.byKey[key] = m
			go im.start(m, layer, ch)
		}
		m.users[user] = true
		im.users[user] = key
	}
	im.mu.Unlock()
	select {
	case <-m.ready:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if m.err != nil {
		im.release(user)
		return "", m.err
	}
	return m.dir, nil
}

func (im *imageMounts) start(m *imageMount, layer remoteLayer, ch choice) {
	defer close(m.ready)
	// A mount left here by a process that died holds nothing we can use.
	if err := unix.Unmount(m.dir, unix.MNT_DETACH); err == nil {
		im.log.Info("snapshotter: detached a stale image mount", "dir", m.dir)
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		m.err = err
		return
	}
	opts := append([]lazymount.Option{lazymount.WithStateDir(im.stateDir())}, im.opts...)
	// The layer may be below the top of the image it came with: another
	// image, on this host too, was built on it. Its file system is that
	// image's bottom layers.
	opts = append(opts, lazymount.WithTrace(ch.trace), lazymount.WithWorkload(ch.workload), lazymount.WithLogger(im.log),
		lazymount.WithBackstoreOptions(backstore.WithLayerCount(layer.depth)))
	if ch.record != "" {
		// A recording is of a start without prefetch, as `dejavu trace
		// record` makes it.
		m.rec, m.recordName = record.NewCapture(time.Now()), ch.record
		opts = append(append(opts, lazymount.WithTrace(trace.SourceSpec{Kind: trace.SourceNone})), m.rec.MountOptions()...)
	}
	start := time.Now()
	lm, err := lazymount.Start(im.ctx, layer.image, m.dir, opts...)
	if err != nil {
		m.err = err
		os.Remove(m.dir)
		return
	}
	if n := len(lm.Backstore().Manifest().Layers); n != layer.depth {
		lm.Close()
		os.Remove(m.dir)
		m.err = fmt.Errorf("layer %s is layer %d of image %s, but %d layers were opened", layer.name, layer.depth, layer.image, n)
		return
	}
	m.m = lm
	im.log.Info("snapshotter: image mounted", "image", layer.image, "dir", m.dir, "prefetch", lm.Prefetching(), "recording", m.recordName != "", "took", time.Since(start).Round(time.Millisecond))
}

// release drops user's hold on its image mount and unmounts the image when
// nobody else holds it.
func (im *imageMounts) release(user string) {
	im.mu.Lock()
	key, ok := im.users[user]
	if !ok {
		im.mu.Unlock()
		return
	}
	delete(im.users, user)
	m := im.byKey[key]
	delete(m.users, user)
	last := len(m.users) == 0
	if last {
		delete(im.byKey, key)
		im.closing++
	}
	im.mu.Unlock()
	if last {
		if err := im.unmount(m); err != nil {
			im.log.Warn("snapshotter: unmounting image", "dir", m.dir, "err", err)
		}
		im.mu.Lock()
		im.closing--
		im.mu.Unlock()
	}
}

// unmount tears an image mount down and writes its recording.
func (im *imageMounts) unmount(m *imageMount) error {
	<-m.ready
	if m.m == nil {
		return nil
	}
	err := m.m.Close()
	rep := m.m.Report()
	if im.unmounted != nil {
		im.unmounted(m.image, rep)
	}
	if m.m.Prefetching() {
		im.log.Info("snapshotter: prefetch", "dir", m.dir, "units", rep.Units, "hit", rep.Hit, "partial", rep.Partial, "miss", rep.Miss, "waste", rep.Waste, "failed", rep.Failed)
	}
	if m.rec != nil {
		t := m.rec.Trace(m.recordName, nil, "dejavu snapshotter")
		path := TracePath(im.root, m.recordName)
		if werr := trace.WriteFile(path, t, trace.WithReplace(true)); werr != nil {
			err = errors.Join(err, werr)
		} else {
			im.log.Info("snapshotter: trace recorded", "path", path, "ranges", len(t.Records), "bytes", t.Bytes())
		}
	}
	if err != nil {
		return err
	}
	return os.Remove(m.dir)
}

// closeAll unmounts every image.
func (im *imageMounts) closeAll() error {
	im.mu.Lock()
	im.closed = true
	all := im.byKey
	im.byKey, im.users = map[string]*imageMount{}, map[string]string{}
	im.mu.Unlock()
	var errs []error
	for _, m := range all {
		errs = append(errs, im.unmount(m))
	}
	im.cancel()
	return errors.Join(errs...)
}

// cleanup tears down what a snapshotter process that died left: mounts
// under mnt/ first (lazily: a container may still hold one, and with its
// FUSE server gone it serves nothing anyway), then the loop devices and
// FUSE mounts under them (a busy loop device is detached when let go).
func (im *imageMounts) cleanup(ctx context.Context) error {
	var errs []error
	entries, err := os.ReadDir(filepath.Join(im.root, "mnt"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(im.root, "mnt", e.Name())
		if err := unix.Unmount(dir, unix.MNT_DETACH); err == nil {
			im.log.Info("snapshotter: detached an image mount left by an earlier process", "dir", dir)
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if _, err := device.Cleanup(ctx, device.WithStateDir(im.stateDir()), device.WithLogger(im.log)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mounted counts the image mounts there are, and those being torn down.
func (im *imageMounts) mounted() int {
	im.mu.Lock()
	defer im.mu.Unlock()
	return len(im.byKey) + im.closing
}
