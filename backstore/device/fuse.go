package device

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Source is what the device serves: a read-only virtual disk. The kernel
// sends several reads at once, so ReadAt is called concurrently and must be
// safe for that. A ReadAt that cannot deliver every byte asked for must say
// so with an error; the reader then sees EIO.
type Source interface {
	ReadAt(p []byte, off int64) (int, error)
	Size() int64
}

// diskName is the name of the single file in the FUSE file system.
const diskName = "disk"

type rootNode struct {
	fs.Inode
	src Source
	log *slog.Logger
}

var _ fs.NodeOnAdder = (*rootNode)(nil)

func (r *rootNode) OnAdd(ctx context.Context) {
	ch := r.NewPersistentInode(ctx, &diskNode{src: r.src, log: r.log}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: 2})
	r.AddChild(diskName, ch, false)
}

type diskNode struct {
	fs.Inode
	src Source
	log *slog.Logger
}

var (
	_ fs.NodeOpener    = (*diskNode)(nil)
	_ fs.NodeReader    = (*diskNode)(nil)
	_ fs.NodeGetattrer = (*diskNode)(nil)
)

func (d *diskNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(d.src.Size())
	out.Blksize = 4096
	out.Blocks = (out.Size + 511) / 512
	return 0
}

// Open bypasses the page cache of the FUSE file: the loop device above it
// has its own, and the source must see every block request as it was made.
func (d *diskNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (d *diskNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return readDisk(d.src, d.log, dest, off)
}

// readDisk answers one kernel read. Past the end it returns nothing (EOF);
// a failed or short read of bytes inside the disk becomes EIO, because the
// loop device would otherwise pass zeros or stale bytes up as file data.
func readDisk(src Source, log *slog.Logger, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := src.Size()
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if int64(len(dest)) > size-off {
		dest = dest[:size-off]
	}
	n, err := src.ReadAt(dest, off)
	if n == len(dest) && (err == nil || errors.Is(err, io.EOF)) {
		return fuse.ReadResultData(dest), 0
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	log.Error("device: read failed", "off", off, "len", len(dest), "got", n, "err", err)
	return nil, syscall.EIO
}
