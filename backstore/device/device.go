package device

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// DefaultStateDir is where mount state lives unless WithStateDir says
// otherwise.
const DefaultStateDir = "/run/dejavu"

// Option configures Mount, Unmount and Cleanup.
type Option func(*config)

type config struct {
	stateDir string
	log      *slog.Logger
	maxRead  int
	fsType   string
	attached func(devt uint32) error
}

func newConfig(opts []Option) config {
	c := config{stateDir: DefaultStateDir, log: slog.Default(), maxRead: 512 << 10, fsType: "ext4"}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithStateDir sets where mount state files are kept.
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMaxRead sets the largest read the kernel sends the FUSE file.
func WithMaxRead(n int) Option { return func(c *config) { c.maxRead = n } }

// WithAttached calls fn with the loop device's number (DevT's encoding) once
// it is attached and before the file system is mounted, so that a block
// tracer can see the mount's own reads.
func WithAttached(fn func(devt uint32) error) Option { return func(c *config) { c.attached = fn } }

// WithFSType sets the type of the file system mounted (default ext4).
func WithFSType(t string) Option { return func(c *config) { c.fsType = t } }

// state is what a later process needs to tear a mount down.
type state struct {
	PID     int       `json:"pid"`
	Target  string    `json:"target"`
	FUSEDir string    `json:"fuseDir"`
	Loop    string    `json:"loop,omitempty"`
	Created time.Time `json:"created"`
}

// Device is a mounted virtual disk.
type Device struct {
	cfg    config
	dir    string // state directory of this mount
	st     state
	server *fuse.Server
	rdev   uint64
	closed bool
}

// Mount serves src as a disk and mounts its file system read-only at
// target, which is created if missing.
func Mount(ctx context.Context, src Source, target string, opts ...Option) (_ *Device, err error) {
	cfg := newConfig(opts)
	target, err = filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	if mounted, _ := isMountPoint(target); mounted {
		return nil, fmt.Errorf("device: %s is already a mount point", target)
	}
	id := make([]byte, 6)
	rand.Read(id)
	dir := filepath.Join(cfg.stateDir, hex.EncodeToString(id))
	d := &Device{cfg: cfg, dir: dir, st: state{PID: os.Getpid(), Target: target, FUSEDir: filepath.Join(dir, "fuse"), Created: time.Now()}}
	if err := os.MkdirAll(d.st.FUSEDir, 0o700); err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := d.save(); err != nil {
		return nil, err
	}
	root := &rootNode{src: src, log: cfg.log}
	d.server, err = fs.Mount(d.st.FUSEDir, root, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      "dejavu",
			Name:        "dejavu",
			MaxWrite:    cfg.maxRead,
			DirectMount: true,
		},
		// The disk never changes: let the kernel keep its attributes.
		AttrTimeout:  ptr(time.Hour),
		EntryTimeout: ptr(time.Hour),
	})
	if err != nil {
		return nil, fmt.Errorf("device: FUSE mount at %s: %w", d.st.FUSEDir, err)
	}
	disk := filepath.Join(d.st.FUSEDir, diskName)
	out, err := run(ctx, "losetup", "--find", "--show", "--read-only", "--direct-io=on", disk)
	if err != nil {
		return nil, fmt.Errorf("device: attach %s to a loop device: %w", disk, err)
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

// DevT returns the loop device's number in the kernel's internal encoding
// (major<<20 | minor), as block tracepoints report it.
func (d *Device) DevT() uint32 {
	return unix.Major(d.rdev)<<20 | unix.Minor(d.rdev)
}

// Target returns where the file system is mounted.
func (d *Device) Target() string { return d.st.Target }

func (d *Device) save() error {
	b, err := json.Marshal(d.st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(d.dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("device: save state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(d.dir, "state.json"))
}

// Close unmounts the file system, detaches the loop device and stops FUSE.
// It is safe to call more than once.
func (d *Device) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	err := teardown(context.Background(), d.cfg, d.dir, d.st, d.server)
	return err
}

// teardown undoes a mount in order, tolerating steps already undone.
func teardown(ctx context.Context, cfg config, dir string, st state, server *fuse.Server) error {
	var errs []error
	if mounted, _ := isMountPoint(st.Target); mounted {
		if err := unmount(st.Target); err != nil {
			errs = append(errs, fmt.Errorf("device: unmount %s: %w", st.Target, err))
		}
	}
	if st.Loop != "" && loopBacking(st.Loop) == filepath.Join(st.FUSEDir, diskName) {
		if _, err := run(ctx, "losetup", "-d", st.Loop); err != nil {
			errs = append(errs, fmt.Errorf("device: detach %s: %w", st.Loop, err))
		}
	}
	if mounted, _ := isMountPoint(st.FUSEDir); mounted {
		// A live server unmounts itself; without one (its process died)
		// only the kernel's side is left, which a lazy unmount removes.
		var err error
		if server != nil {
			err = server.Unmount()
		}
		if server == nil || err != nil {
			err = unix.Unmount(st.FUSEDir, unix.MNT_DETACH)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("device: unmount FUSE %s: %w", st.FUSEDir, err))
		}
	}
	if len(errs) == 0 {
		os.RemoveAll(dir)
	}
	return errors.Join(errs...)
}

// unmount unmounts target, retrying while it is busy for a few seconds.
func unmount(target string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Unmount(target, 0); err == nil || !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// loopBacking returns the file a loop device is attached to ("" if none).
func loopBacking(dev string) string {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// isMountPoint reports whether path is a mount point, from mountinfo.
func isMountPoint(path string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == path {
			return true, nil
		}
	}
	return false, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				out = append(out, v)
				i += 3
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

// run runs a system program, with its output in the error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	path, err := lookPath(name)
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (install util-linux/mount)", name)
}

// processAlive reports whether pid runs.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
