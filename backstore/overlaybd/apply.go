//go:build linux

package overlaybd

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Names with special meaning in OCI layer changesets.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	xattrPAXPrefix = "SCHILY.xattr."

	// maxApplySymlinks bounds symlink expansion while resolving a parent
	// directory, as the kernel's own limit does, so that link loops end.
	maxApplySymlinks = 40
)

// ErrPathEscapes is returned (wrapped) when an entry's name or hard link
// target leads outside the directory the layer is applied to.
var ErrPathEscapes = errors.New("path escapes the root")

// ApplyStats counts what ApplyLayer did.
type ApplyStats struct {
	Entries   int   // tar entries read, whiteouts included
	Bytes     int64 // regular file content written
	Whiteouts int   // whiteout and opaque markers honoured
}

// ApplyOption configures ApplyLayer.
type ApplyOption func(*applyConfig)

type applyConfig struct {
	log       *slog.Logger
	ownership bool
}

// WithApplyLogger sets the logger for debug messages (default: none).
func WithApplyLogger(l *slog.Logger) ApplyOption {
	return func(c *applyConfig) {
		if l != nil {
			c.log = l
		}
	}
}

// WithoutOwnership leaves files owned by the caller instead of the uid and
// gid in the tar, for callers that cannot chown (unprivileged runs). The
// result then no longer matches the image, so converters should not use it.
func WithoutOwnership() ApplyOption {
	return func(c *applyConfig) { c.ownership = false }
}

// ApplyLayer extracts the uncompressed layer tar r into root, on top of what
// earlier layers left there, following the OCI image spec's changeset rules:
// entries replace what is at their path, ".wh.NAME" removes NAME from lower
// layers, ".wh..wh..opq" hides all lower content of its directory.
//
// Every path is resolved inside root: entry names and hard link targets that
// climb out with ".." fail with ErrPathEscapes, a leading "/" is dropped, and
// symlinks met on the way to an entry are followed as if root were the file
// system root (an absolute target starts again at root), so no entry lands
// outside root. Symlink targets themselves are stored verbatim.
func ApplyLayer(ctx context.Context, root *os.Root, r io.Reader, opts ...ApplyOption) (ApplyStats, error) {
	cfg := applyConfig{log: slog.New(slog.DiscardHandler), ownership: true}
	for _, o := range opts {
		o(&cfg)
	}
	a := &applier{
		root:  root,
		cfg:   cfg,
		layer: map[string]struct{}{},
		dirs:  map[string]string{},
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.stats, fmt.Errorf("overlaybd: apply layer: %w", err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a.stats, fmt.Errorf("overlaybd: apply layer: read tar: %w", err)
		}
		a.stats.Entries++
		if err := a.entry(hdr, tr); err != nil {
			return a.stats, fmt.Errorf("overlaybd: apply layer: entry %q: %w", hdr.Name, err)
		}
	}
	if err := a.setDirTimes(); err != nil {
		return a.stats, fmt.Errorf("overlaybd: apply layer: %w", err)
	}
	return a.stats, nil
}

type dirTimes struct {
	path         string
	atime, mtime time.Time
}

type applier struct {
	root  *os.Root
	cfg   applyConfig
	stats ApplyStats
	// layer holds the resolved paths this layer created or rewrote: an opaque
	// marker or whiteout must spare them, as it only hides lower layers.
	layer map[string]struct{}
	// dirs caches lexical parent directory → resolved directory; it is
	// dropped whenever something is removed or a symlink is made, the only
	// changes that can alter a resolution.
	dirs     map[string]string
	dirTimes []dirTimes
}

// cleanName turns a tar name into a clean path relative to the root.
func cleanName(name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", ErrPathEscapes
	}
	return p, nil
}

// entryName returns the clean name of a layer entry, "" for an entry that
// changes nothing (a global PAX header).
func entryName(hdr *tar.Header) (string, error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return "", nil
	}
	name, err := cleanName(hdr.Name)
	if err == nil && name == "." && hdr.Typeflag != tar.TypeDir {
		err = errors.New("only a directory may stand for the root")
	}
	return name, err
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := entryName(hdr)
	if name == "" || err != nil {
		return err
	}
	if name == "." {
		return a.dir(".", hdr)
	}
	dir, base := path.Split(name)
	parent, err := a.resolveDir(dir)
	if err != nil {
		return err
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(parent, base)
	}
	ops := entryOps[string]{dir: a.dir, file: a.file, symlink: a.symlink, hardlink: a.hardlink, special: a.special}
	return ops.apply(path.Join(parent, base), hdr, r)
}

// entryOps are what an applier does with each type of tar entry at a
// position P (a path, or a place in a tree); apply picks by type.
type entryOps[P any] struct {
	dir, symlink, hardlink, special func(P, *tar.Header) error
	file                            func(P, *tar.Header, io.Reader) error
}

func (o entryOps[P]) apply(at P, hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeDir:
		return o.dir(at, hdr)
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		return o.file(at, hdr, r)
	case tar.TypeSymlink:
		return o.symlink(at, hdr)
	case tar.TypeLink:
		return o.hardlink(at, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return o.special(at, hdr)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

// resolveDir returns where the clean relative directory dir really is inside
// the root, with every symlink on the way expanded the way chroot would, and
// creates the directories that are missing (mode 0755). The os.Root calls
// confine each step, so a racing change can make this fail but not escape.
func (a *applier) resolveDir(dir string) (string, error) {
	dir = path.Clean(dir)
	if r, ok := a.dirs[dir]; ok {
		return r, nil
	}
	done, err := walkDir(dir, a.dirStep)
	if err != nil {
		return "", err
	}
	r := joinRel(done)
	a.dirs[dir] = r
	return r, nil
}

// dirStep looks at component c of the resolved directory done, and makes
// it (mode 0755) when it is missing.
func (a *applier) dirStep(done []string, c string) (bool, string, error) {
	p := path.Join(append(done, c)...)
	fi, err := a.root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := a.root.Mkdir(p, 0o755); err != nil {
			return false, "", err
		}
		// Mkdir is subject to the umask; the spec wants 0755.
		if err := a.root.Chmod(p, 0o755); err != nil {
			return false, "", err
		}
		a.layer[p] = struct{}{}
		return false, "", nil
	case err != nil:
		return false, "", err
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := a.root.Readlink(p)
		return true, target, err
	case fi.IsDir():
		return false, "", nil
	default:
		return false, "", &fs.PathError{Op: "resolve", Path: p, Err: syscall.ENOTDIR}
	}
}

// makeRoom makes room for a new entry at full. An existing directory stays when
// the new entry is a directory too; anything else there is removed.
func (a *applier) makeRoom(full string, dir bool) (kept bool, err error) {
	fi, err := a.root.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if dir && fi.IsDir() {
		return true, nil
	}
	if full == "." {
		return false, errors.New("cannot replace the root directory")
	}
	clear(a.dirs)
	if fi.IsDir() {
		return false, a.root.RemoveAll(full)
	}
	return false, a.root.Remove(full)
}

func (a *applier) dir(full string, hdr *tar.Header) error {
	kept, err := a.makeRoom(full, true)
	if err != nil {
		return err
	}
	if !kept {
		if err := a.root.Mkdir(full, 0o700); err != nil {
			return err
		}
	}
	a.layer[full] = struct{}{}
	d, err := a.root.OpenFile(full, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	err = a.fdMeta(d, full, hdr)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Writing the directory's children would move its mtime again.
	a.dirTimes = append(a.dirTimes, dirTimes{full, accessTime(hdr), hdr.ModTime})
	return nil
}

func (a *applier) file(full string, hdr *tar.Header, r io.Reader) error {
	if _, err := a.makeRoom(full, false); err != nil {
		return err
	}
	// O_EXCL: never write through whatever might have appeared at full.
	f, err := a.root.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	a.layer[full] = struct{}{}
	n, err := io.Copy(f, r)
	a.stats.Bytes += n
	if err == nil {
		err = a.fdMeta(f, full, hdr)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return a.root.Chtimes(full, accessTime(hdr), hdr.ModTime)
}

func (a *applier) symlink(full string, hdr *tar.Header) error {
	if _, err := a.makeRoom(full, false); err != nil {
		return err
	}
	clear(a.dirs)
	if err := a.root.Symlink(hdr.Linkname, full); err != nil {
		return err
	}
	a.layer[full] = struct{}{}
	if a.cfg.ownership {
		if err := a.root.Lchown(full, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	return a.atParent(full, func(dfd int, base string) error {
		return a.setTimesAt(dfd, base, hdr)
	})
}

func (a *applier) hardlink(full string, hdr *tar.Header) error {
	name, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if name == "." {
		return errors.New("hard link to the root directory")
	}
	dir, base := path.Split(name)
	parent, err := a.resolveDir(dir)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	target := path.Join(parent, base)
	if target == full {
		return nil
	}
	fi, err := a.root.Lstat(target)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("hard link target %q is a directory", hdr.Linkname)
	}
	if _, err := a.makeRoom(full, false); err != nil {
		return err
	}
	// Root.Link does not follow a symlink at target: like link(2), the new
	// name shares the symlink's own inode.
	if err := a.root.Link(target, full); err != nil {
		return err
	}
	a.layer[full] = struct{}{}
	return nil
}

func (a *applier) special(full string, hdr *tar.Header) error {
	var kind uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		kind = unix.S_IFCHR
	case tar.TypeBlock:
		kind = unix.S_IFBLK
	default:
		kind = unix.S_IFIFO
	}
	if hdr.Devmajor < 0 || hdr.Devmajor > 0xFFFFFFFF || hdr.Devminor < 0 || hdr.Devminor > 0xFFFFFFFF {
		return fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
	}
	if _, err := a.makeRoom(full, false); err != nil {
		return err
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	return a.atParent(full, func(dfd int, base string) error {
		if err := unix.Mknodat(dfd, base, kind|0o600, int(dev)); err != nil {
			return &fs.PathError{Op: "mknodat", Path: full, Err: err}
		}
		a.layer[full] = struct{}{}
		if a.cfg.ownership {
			if err := a.root.Lchown(full, hdr.Uid, hdr.Gid); err != nil {
				return err
			}
		}
		// After chown, which clears set-id bits.
		if err := a.root.Chmod(full, fileMode(hdr)); err != nil {
			return err
		}
		// Opening a device to reach it by fd could have side effects, so
		// set attributes by name through the parent's descriptor.
		at := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + base
		if err := a.setXattrs(full, hdr, func(k string, v []byte) error {
			return unix.Lsetxattr(at, k, v, 0)
		}); err != nil {
			return err
		}
		return a.setTimesAt(dfd, base, hdr)
	})
}

func (a *applier) whiteout(parent, base string) error {
	a.stats.Whiteouts++
	if base == whiteoutOpaque {
		a.layer[parent] = struct{}{}
		return a.prune(parent)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		// Other ".wh..wh." names are aufs bookkeeping, not changes.
		a.cfg.log.Debug("overlaybd: ignoring whiteout metadata entry", "dir", parent, "name", base)
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout name %q", base)
	}
	full := path.Join(parent, name)
	if _, ok := a.layer[full]; ok {
		// A whiteout hides lower layers only, never its own layer's entries.
		return nil
	}
	clear(a.dirs)
	return a.root.RemoveAll(full)
}

// prune removes from dir everything this layer did not put there, and
// recurses into the directories it did, as their lower content is hidden
// by the opaque marker too.
func (a *applier) prune(dir string) error {
	d, err := a.root.Open(dir)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if _, ok := a.layer[p]; !ok {
			clear(a.dirs)
			if err := a.root.RemoveAll(p); err != nil {
				return err
			}
			continue
		}
		fi, err := a.root.Lstat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if err := a.prune(p); err != nil {
				return err
			}
		}
	}
	return nil
}
