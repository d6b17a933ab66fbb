package device

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// DefaultStateDir is where mount state lives unless WithStateDir says
// otherwise.
const DefaultStateDir = "/run/dejavu"

// DefaultMaxRead is the largest read the kernel sends the disk by default.
const DefaultMaxRead = 512 << 10

// Option configures Mount, Unmount and Cleanup.
type Option func(*config)

type config struct {
	stateDir  string
	log       *slog.Logger
	maxRead   int
	fsType    string
	readAhead int
	attached  func(devt uint32) error
}

func newConfig(opts []Option) config {
	c := config{stateDir: DefaultStateDir, maxRead: DefaultMaxRead, fsType: "ext4", readAhead: DefaultReadAhead}
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// WithStateDir sets where mount state is kept (default DefaultStateDir).
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithLogger sets the logger (default: none; nil discards logs).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMaxRead sets the largest read the kernel sends the disk, from 4 KiB
// to 1 MiB (the kernel's FUSE limit); default DefaultMaxRead.
func WithMaxRead(n int) Option { return func(c *config) { c.maxRead = n } }

// WithAttached calls fn with the loop device's number (DevT's encoding) once
// it is attached and before the file system is mounted, so that a block
// tracer can see the mount's own reads.
func WithAttached(fn func(devt uint32) error) Option { return func(c *config) { c.attached = fn } }

// DefaultReadAhead is the loop device's readahead, in KiB. The kernel gives
// a loop device over a FUSE file 2.5 MiB, so that one page fault in a
// mapped library pulls megabytes around it; on a device whose every byte
// may be a registry fetch, that is megabytes a start does not need. 128 KiB
// is what a disk gets.
const DefaultReadAhead = 128

// WithReadAhead sets the loop device's readahead in KiB (default
// DefaultReadAhead; negative: leave the kernel's).
func WithReadAhead(kb int) Option { return func(c *config) { c.readAhead = kb } }

// WithFSType sets the type of the file system mounted (default ext4).
func WithFSType(t string) Option { return func(c *config) { c.fsType = t } }

// state is what a later process needs to tear a mount down.
type state struct {
	PID int `json:"pid"`
	// Start is the owner's start time (clock ticks since boot), so that
	// another process that got the same pid later is not taken for it.
	Start   uint64    `json:"start,omitempty"`
	Target  string    `json:"target"`
	FUSEDir string    `json:"fuseDir"`
	Loop    string    `json:"loop,omitempty"`
	Created time.Time `json:"created"`
}

func (st state) disk() string { return filepath.Join(st.FUSEDir, diskName) }

// Device is a mounted virtual disk.
type Device struct {
	cfg  config
	dir  string // state directory of this mount
	st   state
	rdev uint64

	mu     sync.Mutex // serialises Close
	server *fuse.Server
	closed bool
}

// Mount serves src as a disk and mounts its file system read-only at
// target, which is created if missing. It returns once target is usable.
// The source is read until Close returns.
func Mount(ctx context.Context, src Source, target string, opts ...Option) (_ *Device, err error) {
	cfg := newConfig(opts)
	if cfg.maxRead < 4096 || cfg.maxRead > 1<<20 {
		return nil, fmt.Errorf("device: max read %d is outside 4 KiB..1 MiB", cfg.maxRead)
	}
	if src == nil || src.Size() <= 0 {
		return nil, errors.New("device: the source is empty")
	}
	// Mount tables and sysfs name paths with symbolic links resolved;
	// the state must use the same names to find its mounts again.
	if target, err = realDir(target, 0o755); err != nil {
		return nil, fmt.Errorf("device: target: %w", err)
	}
	stateDir, err := realDir(cfg.stateDir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("device: state directory: %w", err)
	}
	if _, mounted := mountedDev(target); mounted {
		return nil, fmt.Errorf("device: %s is already a mount point", target)
	}
	id := make([]byte, 6)
	rand.Read(id)
	dir := filepath.Join(stateDir, hex.EncodeToString(id))
	start, _, _ := procStat(os.Getpid())
	d := &Device{cfg: cfg, dir: dir, st: state{
		PID: os.Getpid(), Start: start, Target: target,
		FUSEDir: filepath.Join(dir, "fuse"), Created: time.Now().UTC(),
	}}
	// The state directory is root's alone (0700), which also keeps others
	// out of the FUSE mount inside it.
	if err := os.MkdirAll(d.st.FUSEDir, 0o700); err != nil {
		return nil, fmt.Errorf("device: state directory: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
		}
	}()
	// Saved before anything is mounted, so that every later step can be
	// undone by another process if this one dies.
	if err := d.save(); err != nil {
		return nil, err
	}
	if err := d.serve(src); err != nil {
		return nil, err
	}
	out, err := run(ctx, "losetup", "--find", "--show", "--read-only", "--direct-io=on", d.st.disk())
	if err != nil {
		return nil, fmt.Errorf("device: attach %s to a loop device: %w", d.st.disk(), err)
	}
	d.st.Loop = strings.TrimSpace(out)
	if err := d.save(); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(d.st.Loop, &st); err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	d.rdev = st.Rdev
	if cfg.readAhead >= 0 {
		if err := setReadAhead(d.st.Loop, cfg.readAhead); err != nil {
			return nil, err
		}
	}
	if cfg.attached != nil {
		if err := cfg.attached(d.DevT()); err != nil {
			return nil, err
		}
	}
	if _, err := run(ctx, "mount", "-t", cfg.fsType, "-o", mountOptions(cfg.fsType), d.st.Loop, target); err != nil {
		return nil, fmt.Errorf("device: mount %s at %s: %w", d.st.Loop, target, err)
	}
	cfg.log.Debug("device: mounted", "target", target, "loop", d.st.Loop, "fuse", d.st.FUSEDir)
	return d, nil
}

// serve mounts the FUSE file system that holds the disk. As root the
// kernel is asked directly; go-fuse falls back to fusermount when that is
// refused.
func (d *Device) serve(src Source) error {
	root := &rootNode{src: src, log: d.cfg.log}
	server, err := fs.Mount(d.st.FUSEDir, root, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      "dejavu",
			Name:        "dejavu",
			MaxWrite:    d.cfg.maxRead, // go-fuse also makes it max_read
			DirectMount: true,
			Options:     []string{"ro", "noexec"},
			// Without asynchronous direct I/O the kernel waits for each
			// read of the loop device before it sends the next, so the
			// source would see one read at a time.
			ExtraCapabilities: fuse.CAP_ASYNC_DIO,
		},
		// The disk never changes: let the kernel keep its attributes.
		AttrTimeout:  ptr(time.Hour),
		EntryTimeout: ptr(time.Hour),
	})
	if err != nil {
		return fmt.Errorf("device: FUSE mount at %s: %w", d.st.FUSEDir, err)
	}
	d.mu.Lock()
	d.server = server
	d.mu.Unlock()
	return nil
}

func ptr[T any](v T) *T { return &v }

// mountOptions are read-only; ext4 must also not replay a journal.
func mountOptions(fsType string) string {
	if fsType == "ext4" {
		return "ro,noload"
	}
	return "ro"
}

// LoopDevice returns the loop device's path.
func (d *Device) LoopDevice() string { return d.st.Loop }

// Rdev returns the loop device's number as stat(2) reports it (st_rdev).
func (d *Device) Rdev() uint64 { return d.rdev }

// Major returns the loop device's major number.
func (d *Device) Major() uint32 { return unix.Major(d.rdev) }

// Minor returns the loop device's minor number.
func (d *Device) Minor() uint32 { return unix.Minor(d.rdev) }

// DevT returns the loop device's number in the kernel's internal encoding
// (major<<20 | minor), as block tracepoints report it.
func (d *Device) DevT() uint32 { return d.Major()<<20 | d.Minor() }

// Target returns where the file system is mounted.
func (d *Device) Target() string { return d.st.Target }

func (d *Device) save() error {
	b, err := json.Marshal(d.st)
	if err != nil {
		return fmt.Errorf("device: save state: %w", err)
	}
	tmp := filepath.Join(d.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("device: save state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, stateFile)); err != nil {
		return fmt.Errorf("device: save state: %w", err)
	}
	return nil
}

// Close unmounts the file system, detaches the loop device, stops serving
// the disk and removes the mount's state. It may be called more than once
// and from any goroutine, e.g. a signal handler's while reads are in
// flight; when a step fails (the file system stays busy), the steps below
// it are left in place and a later Close, Unmount or Cleanup can finish.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if err := teardown(context.Background(), d.cfg, d.dir, d.st, d.server); err != nil {
		return err
	}
	d.server = nil
	d.closed = true
	d.cfg.log.Debug("device: unmounted", "target", d.st.Target)
	return nil
}

// teardown undoes a mount in order (file system, loop device, FUSE),
// tolerating steps already undone and stopping at the first that fails, so
// that nothing is pulled from under a mount that is still in use.
func teardown(ctx context.Context, cfg config, dir string, st state, server *fuse.Server) error {
	loops := loopsBackedBy(st.disk())
	if dev, ok := mountedDev(st.Target); ok && loops[dev] != "" {
		if err := unmountBusy(ctx, st.Target); err != nil {
			return fmt.Errorf("device: unmount %s: %w", st.Target, err)
		}
	}
	for _, loop := range loops {
		if _, err := run(ctx, "losetup", "-d", loop); err != nil && loopBacking(loop) == st.disk() {
			return fmt.Errorf("device: detach %s: %w", loop, err)
		}
	}
	if _, ok := mountedDev(st.FUSEDir); ok {
		var err error
		if server != nil {
			err = server.Unmount()
		}
		if server == nil || err != nil {
			// Without a live server (its process died) only the kernel's
			// side is left, and a lazy unmount removes it; so it does when
			// the loop device still lets go of the disk late.
			err = unix.Unmount(st.FUSEDir, unix.MNT_DETACH)
		}
		if err != nil {
			return fmt.Errorf("device: unmount FUSE %s: %w", st.FUSEDir, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("device: remove state: %w", err)
	}
	return nil
}

// unmountBusy unmounts target, retrying for a few seconds while files on
// it are still open.
func unmountBusy(ctx context.Context, target string) error {
	for i := 0; ; i++ {
		err := unix.Unmount(target, 0)
		if err == nil || errors.Is(err, unix.EINVAL) {
			return nil // EINVAL: no longer a mount point
		}
		if !errors.Is(err, unix.EBUSY) || i == 50 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// processAlive reports whether the process that saved st still runs.
func processAlive(st state) bool {
	if st.PID <= 0 {
		return false
	}
	if err := syscall.Kill(st.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	start, zombie, err := procStat(st.PID)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) // unknown: assume it runs
	}
	return !zombie && (st.Start == 0 || start == st.Start)
}

// realDir creates dir if needed and returns its absolute path with
// symbolic links resolved.
func realDir(dir string, perm os.FileMode) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, perm); err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// setReadAhead sets a block device's readahead in KiB.
func setReadAhead(dev string, kb int) error {
	p := filepath.Join("/sys/block", filepath.Base(dev), "queue", "read_ahead_kb")
	if err := os.WriteFile(p, []byte(strconv.Itoa(kb)), 0o644); err != nil {
		return fmt.Errorf("device: set readahead of %s: %w", dev, err)
	}
	return nil
}
