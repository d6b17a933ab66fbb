package layerdiff

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Stats counts what a layer holds.
type Stats struct {
	Entries   int   // files, directories, links and devices written
	Whiteouts int   // removed entries
	Bytes     int64 // file content
}

// Diff writes to w, as an uncompressed tar, what upper adds to or changes
// in lower, and a whiteout for each entry of lower that upper lacks. An
// empty lower makes the whole tree of upper a layer.
func Diff(ctx context.Context, lower, upper string, w io.Writer) (Stats, error) {
	d := &differ{ctx: ctx, lower: lower, upper: upper, tw: tar.NewWriter(w), links: map[fileID]string{}}
	if err := d.dir("."); err != nil {
		return d.st, err
	}
	if err := d.tw.Close(); err != nil {
		return d.st, fmt.Errorf("layerdiff: %w", err)
	}
	return d.st, nil
}

type fileID struct{ dev, ino uint64 }

type differ struct {
	ctx          context.Context
	lower, upper string
	tw           *tar.Writer
	links        map[fileID]string // files of upper written, by inode: later names are hard links
	st           Stats
}

// dir compares the directory rel of both trees, which exists in upper.
func (d *differ) dir(rel string) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	ups, err := names(filepath.Join(d.upper, rel))
	if err != nil {
		return err
	}
	lows, err := names(filepath.Join(d.lower, rel))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	inUpper := make(map[string]bool, len(ups))
	for _, n := range ups {
		inUpper[n] = true
	}
	for _, n := range lows {
		if !inUpper[n] {
			if err := d.whiteout(filepath.Join(rel, n)); err != nil {
				return err
			}
		}
	}
	for _, n := range ups {
		if err := d.entry(filepath.Join(rel, n)); err != nil {
			return err
		}
	}
	return nil
}

// entry writes rel of upper if it differs from lower, and descends into
// directories.
func (d *differ) entry(rel string) error {
	up, err := os.Lstat(filepath.Join(d.upper, rel))
	if err != nil {
		return fmt.Errorf("layerdiff: %w", err)
	}
	low, lerr := os.Lstat(filepath.Join(d.lower, rel))
	same := lerr == nil && d.same(rel, low, up)
	if !same {
		if err := d.write(rel, up); err != nil {
			return err
		}
	}
	if up.IsDir() {
		if lerr == nil && !low.IsDir() {
			// A directory where lower had a file: nothing below it is
			// lower's.
			return d.all(rel)
		}
		return d.dir(rel)
	}
	return nil
}

// all writes everything below the directory rel of upper.
func (d *differ) all(rel string) error {
	ups, err := names(filepath.Join(d.upper, rel))
	if err != nil {
		return err
	}
	for _, n := range ups {
		p := filepath.Join(rel, n)
		fi, err := os.Lstat(filepath.Join(d.upper, p))
		if err != nil {
			return fmt.Errorf("layerdiff: %w", err)
		}
		if err := d.write(p, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := d.all(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *differ) same(rel string, low, up fs.FileInfo) bool {
	ls, us := low.Sys().(*syscall.Stat_t), up.Sys().(*syscall.Stat_t)
	if low.Mode() != up.Mode() || ls.Uid != us.Uid || ls.Gid != us.Gid {
		return false
	}
	switch {
	case up.Mode().IsRegular():
		if low.Size() != up.Size() || !low.ModTime().Equal(up.ModTime()) {
			return false
		}
	case up.Mode()&fs.ModeSymlink != 0:
		lt, _ := os.Readlink(filepath.Join(d.lower, rel))
		ut, _ := os.Readlink(filepath.Join(d.upper, rel))
		if lt != ut {
			return false
		}
	case up.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		if ls.Rdev != us.Rdev {
			return false
		}
	case up.IsDir():
		if !low.ModTime().Equal(up.ModTime()) {
			return false
		}
	}
	lx, _ := xattrs(filepath.Join(d.lower, rel))
	ux, _ := xattrs(filepath.Join(d.upper, rel))
	return maps.Equal(lx, ux)
}

func (d *differ) whiteout(rel string) error {
	dir, base := filepath.Split(rel)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(filepath.Join(dir, ".wh."+base)), Mode: 0o644, Format: tar.FormatPAX}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layerdiff: whiteout %s: %w", rel, err)
	}
	d.st.Whiteouts++
	return nil
}

// write writes the entry rel of upper: a hard link to a file this layer
// has written already under another name, or the entry itself.
func (d *differ) write(rel string, fi fs.FileInfo) error {
	p := filepath.Join(d.upper, rel)
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(p); err != nil {
			return fmt.Errorf("layerdiff: %w", err)
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("layerdiff: %s: %w", rel, err)
	}
	// Access and change times differ between copies of the same tree:
	// left out, the same trees make the same layer.
	hdr.Name, hdr.Uname, hdr.Gname, hdr.Format = filepath.ToSlash(rel), "", "", tar.FormatPAX
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if x, err := xattrs(p); err == nil && len(x) > 0 {
		hdr.PAXRecords = map[string]string{}
		for k, v := range x {
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	st := fi.Sys().(*syscall.Stat_t)
	id := fileID{uint64(st.Dev), st.Ino}
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		if first, ok := d.links[id]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return d.header(rel, hdr)
		}
		d.links[id] = hdr.Name
	}
	if err := d.header(rel, hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("layerdiff: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(d.tw, f)
	d.st.Bytes += n
	if err != nil {
		return fmt.Errorf("layerdiff: %s: %w", rel, err)
	}
	return nil
}

func (d *differ) header(rel string, hdr *tar.Header) error {
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layerdiff: %s: %w", rel, err)
	}
	d.st.Entries++
	return nil
}

// names lists a directory, sorted: layers come out the same every time.
func names(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name()
	}
	return out, nil
}

// xattrs reads a path's extended attributes (not following links). Most
// entries have none: one call to learn that, and no buffer.
func xattrs(p string) (map[string]string, error) {
	n, err := unix.Llistxattr(p, nil)
	if err != nil || n == 0 {
		return nil, err
	}
	buf := make([]byte, n)
	if n, err = unix.Llistxattr(p, buf); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		m, err := unix.Lgetxattr(p, k, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, m)
		if m, err = unix.Lgetxattr(p, k, v); err != nil {
			return nil, err
		}
		out[k] = string(v[:m])
	}
	return out, nil
}
