package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is wrapped by the error for a target that exists and is
// not a regular file; such a target is never replaced.
var ErrNotRegular = errors.New("not a regular file")

// Option configures Create, WriteFile and Check.
type Option func(*config)

type config struct {
	replace bool
	perm    fs.FileMode
}

// WithReplace says whether an existing regular file is replaced. Default:
// false, an existing file is an error wrapping fs.ErrExist. Anything that
// is not a regular file is refused either way.
func WithReplace(on bool) Option { return func(c *config) { c.replace = on } }

// WithPerm sets the new file's permissions (before the umask). Default:
// 0o644.
func WithPerm(perm fs.FileMode) Option { return func(c *config) { c.perm = perm } }

func newConfig(opts []Option) config {
	c := config{perm: 0o644}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Check reports whether path may be written with opts, without writing.
// Commands call it before long work (a recording, a benchmark) so that a
// bad output path fails at once rather than at the end.
func Check(path string, opts ...Option) error {
	return check(path, newConfig(opts))
}

func check(path string, c config) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("output %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("output %s is a %s: refusing to replace it: %w", path, kind(fi.Mode()), ErrNotRegular)
	case !c.replace:
		return fmt.Errorf("output %s: %w", path, fs.ErrExist)
	}
	return nil
}

// kind names a file type for an error message.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "file of an irregular type"
}

// File is an output being written: an *os.File under a temporary name in
// the target's directory. Commit puts it in place; Close without Commit
// removes it.
type File struct {
	*os.File
	path string
	c    config
	done bool
}

// Create checks path (see the package documentation) and opens a new
// temporary file beside it. The caller writes into the File and calls
// Commit, and defers Close, which removes the temporary file unless
// committed.
func Create(path string, opts ...Option) (*File, error) {
	c := newConfig(opts)
	if err := check(path, c); err != nil {
		return nil, err
	}
	f, err := createTemp(path, c.perm)
	if err != nil {
		return nil, err
	}
	return &File{File: f, path: path, c: c}, nil
}

// createTemp opens a file that did not exist, named after path in path's
// directory (hidden, so that a glob over the directory does not pick it up
// half written).
func createTemp(path string, perm fs.FileMode) (*os.File, error) {
	dir, base := filepath.Split(path)
	for range 10 {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("output %s: %w", path, err)
		}
		name := filepath.Join(dir, "."+base+"."+hex.EncodeToString(b[:])+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", path, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("output %s: no free temporary name", path)
}

// Commit syncs and closes the file and renames it over the target, checking the
// target again first: something put there since Create (a device node, a
// symbolic link) is refused as it would have been then. Without
// replacement the rename itself refuses an existing target where the file
// system can (RENAME_NOREPLACE), so a file that appears meanwhile is not
// lost. On error the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("output %s: already committed or closed", f.path)
	}
	f.done = true
	tmp := f.Name()
	// Synced before the rename, so that a crash leaves the old file or
	// the whole new one, not an empty file under the target's name.
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = check(f.path, f.c)
	}
	if err == nil {
		err = rename(tmp, f.path, f.c.replace)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func rename(tmp, path string, replace bool) error {
	if !replace {
		err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EEXIST):
			return fmt.Errorf("output %s: %w", path, fs.ErrExist)
		case !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS):
			return fmt.Errorf("output %s: %w", path, err)
		}
		// The file system cannot refuse atomically; the check just made
		// has to do.
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	return nil
}

// Close removes the temporary file unless Commit put it in place; it is
// safe to call after Commit.
func (f *File) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	err := f.File.Close()
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	return err
}

// WriteFile writes data to path as Create and Commit do.
func WriteFile(path string, data []byte, opts ...Option) error {
	f, err := Create(path, opts...)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	return f.Commit()
}
