//go:build linux

package overlaybd

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fdMeta sets owner, mode and extended attributes through an open file, in
// that order: chown clears set-id bits and security.capability.
func (a *applier) fdMeta(f *os.File, full string, hdr *tar.Header) error {
	if a.cfg.ownership {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	if err := f.Chmod(fileMode(hdr)); err != nil {
		return err
	}
	fd := int(f.Fd())
	return a.setXattrs(full, hdr, func(k string, v []byte) error {
		return unix.Fsetxattr(fd, k, v, 0)
	})
}

func (a *applier) setXattrs(full string, hdr *tar.Header, set func(string, []byte) error) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPAXPrefix) && len(k) > len(xattrPAXPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := strings.TrimPrefix(k, xattrPAXPrefix)
		err := set(name, []byte(hdr.PAXRecords[k]))
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
			a.cfg.log.Debug("overlaybd: file system refuses extended attribute, skipped", "path", full, "xattr", name)
			continue
		}
		if err != nil {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// atParent runs fn with a descriptor of full's parent directory, opened
// through the root, for the calls os.Root does not offer.
func (a *applier) atParent(full string, fn func(dfd int, base string) error) error {
	d, err := a.root.OpenFile(path.Dir(full), os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(int(d.Fd()), path.Base(full))
}

// setTimesAt sets times without following a symlink, which Root.Chtimes
// would do.
func (a *applier) setTimesAt(dfd int, base string, hdr *tar.Header) error {
	at, err1 := unix.TimeToTimespec(accessTime(hdr))
	mt, err2 := unix.TimeToTimespec(hdr.ModTime)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	return unix.UtimesNanoAt(dfd, base, []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW)
}

// setDirTimes sets directory times last, once their contents are written;
// directories a later entry replaced or removed are skipped.
func (a *applier) setDirTimes() error {
	for _, d := range a.dirTimes {
		fi, err := a.root.Lstat(d.path)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
			continue
		}
		if err != nil {
			return err
		}
		if err := a.root.Chtimes(d.path, d.atime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

func accessTime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

// fileMode is the permission and set-id part of hdr's mode.
func fileMode(hdr *tar.Header) fs.FileMode {
	return hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}
