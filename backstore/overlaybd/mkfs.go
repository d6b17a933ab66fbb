package overlaybd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// fsBlock is the ext4 block size dejavu builds with (mke2fs -b 4096).
const fsBlock = 4096

// treeUsage estimates the space an ext4 file system needs for dir: data
// blocks of every file and directory, and the inode count.
func treeUsage(dir string) (bytes int64, inodes int64, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		inodes++
		fi, err := d.Info()
		if err != nil {
			return err
		}
		bytes += (fi.Size() + fsBlock - 1) / fsBlock * fsBlock
		if d.IsDir() {
			bytes += fsBlock
		}
		return nil
	})
	return bytes, inodes, err
}

// autoSize picks a file system size with room for the tree's data, its
// inodes and ext4's own metadata, in whole MiB.
func autoSize(data, inodes int64) int64 {
	size := data + data/8 + inodes*512 + 32<<20
	return (size + 1<<20 - 1) >> 20 << 20
}

// findProgram looks a program up on PATH and in the sbin directories, which
// a non-root PATH often lacks.
func findProgram(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: install e2fsprogs (make deps does)", name)
}

// errNoSpace marks a mke2fs run that ran out of blocks or inodes.
var errNoSpace = errors.New("file system too small")

// mkfs makes an ext4 image of size bytes at out holding the tree at dir.
func mkfs(ctx context.Context, dir, out string, size, inodes int64, log *slog.Logger) error {
	prog, err := findProgram("mke2fs")
	if err != nil {
		return err
	}
	if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// No journal: the image is mounted read-only, and a journal would be
	// megabytes of zeros in every layer.
	args := []string{"-t", "ext4", "-b", strconv.Itoa(fsBlock), "-d", dir, "-F", "-q",
		"-O", "^has_journal", "-N", strconv.FormatInt(inodes, 10),
		"-E", "lazy_itable_init=1", "-L", "dejavu", out, strconv.FormatInt(size/1024, 10) + "k"}
	cmd := exec.CommandContext(ctx, prog, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	log.Debug("mke2fs", "args", args)
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "Could not allocate") || strings.Contains(msg, "No space left") {
			return fmt.Errorf("mke2fs: %w: %s", errNoSpace, msg)
		}
		return fmt.Errorf("mke2fs %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return nil
}

// makeExt4 builds an ext4 image of the tree at dir into out. With size 0 the
// size is chosen from the tree and doubled until the tree fits. It returns
// the image size.
func makeExt4(ctx context.Context, dir, out string, size int64, log *slog.Logger) (int64, error) {
	data, inodes, err := treeUsage(dir)
	if err != nil {
		return 0, fmt.Errorf("scan %s: %w", dir, err)
	}
	inodes = inodes + inodes/4 + 256
	auto := size == 0
	if auto {
		size = autoSize(data, inodes)
	}
	for try := 0; ; try++ {
		err := mkfs(ctx, dir, out, size, inodes, log)
		if err == nil {
			return size, nil
		}
		if !auto || !errors.Is(err, errNoSpace) || try == 4 {
			return 0, err
		}
		size *= 2
		log.Debug("file system too small, retrying", "size", size)
	}
}

// DataExtents lists the extents of the file f that hold data, in fsBlock
// units, leaving out holes and blocks that are all zeros: in a single layer
// they read as zeros anyway.
func DataExtents(f *os.File) ([]lsmt.Extent, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	if size%lsmt.SectorSize != 0 {
		return nil, 0, fmt.Errorf("%s: size %d is not a whole number of sectors", f.Name(), size)
	}
	var out []lsmt.Extent
	err = blockSpans(f, make([]byte, 1<<20), func(start int64, blocks []byte) error {
		for i := 0; i < len(blocks); i += fsBlock {
			b := blocks[i:min(i+fsBlock, len(blocks))]
			if allZero(b) {
				continue
			}
			off := start + int64(i)
			if k := len(out); k > 0 && out[k-1].Offset+out[k-1].Length == off {
				out[k-1].Length += int64(len(b))
				continue
			}
			out = append(out, lsmt.Extent{Offset: off, Length: int64(len(b))})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return out, size, nil
}

// dataSpans calls fn for each span of f that holds data (not a hole).
func dataSpans(f *os.File, fn func(start, end int64) error) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	fd := int(f.Fd())
	for off := int64(0); off < fi.Size(); {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: seek data at %d: %w", f.Name(), off, err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("%s: seek hole at %d: %w", f.Name(), data, err)
		}
		if err := fn(data, hole); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

// blockSpans calls fn with the content of f's data spans, widened to whole
// blocks (but for a last partial block at the end of f), a buffer at a time.
func blockSpans(f *os.File, buf []byte, fn func(start int64, blocks []byte) error) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return dataSpans(f, func(start, end int64) error {
		start = start / fsBlock * fsBlock
		end = min((end+fsBlock-1)/fsBlock*fsBlock, fi.Size())
		for p := start; p < end; {
			n := min(int64(len(buf)), end-p)
			if _, err := io.ReadFull(io.NewSectionReader(f, p, n), buf[:n]); err != nil {
				return fmt.Errorf("read image at %d: %w", p, err)
			}
			if err := fn(p, buf[:n]); err != nil {
				return err
			}
			p += n
		}
		return nil
	})
}

var zeroBlock [fsBlock]byte

func allZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }
