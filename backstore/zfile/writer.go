package zfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxWriteBlockSize is the largest block size the Writer offers. The real
// overlaybd reader reads a block into a 64 KiB buffer, so a stored block must
// not exceed 64 KiB; a 64 KiB block of incompressible data plus its CRC does.
const MaxWriteBlockSize = 32 << 10

// WriterOption configures a Writer.
type WriterOption func(*writerConfig) error

type writerConfig struct {
	algo        Algorithm
	blockSize   int
	headerIndex bool
	workers     int
}

// WithAlgorithm selects the block compressor (LZ4 by default).
func WithAlgorithm(a Algorithm) WriterOption {
	return func(c *writerConfig) error {
		if a != LZ4 && a != Zstd {
			return fmt.Errorf("zfile: cannot write %v blocks", a)
		}
		c.algo = a
		return nil
	}
}

// WithBlockSize sets the uncompressed block size: 4, 8, 16 or 32 KiB
// (4 KiB by default, as overlaybd).
func WithBlockSize(n int) WriterOption {
	return func(c *writerConfig) error {
		if err := CheckWriteBlockSize(n); err != nil {
			return err
		}
		c.blockSize = n
		return nil
	}
}

// CheckWriteBlockSize returns an error that says why n is not a block size
// the Writer produces.
func CheckWriteBlockSize(n int) error {
	switch n {
	case 4 << 10, 8 << 10, 16 << 10, 32 << 10:
		return nil
	case 64 << 10:
		return errors.New("zfile: 64 KiB blocks are refused: an incompressible block plus its CRC would exceed the 64 KiB that the overlaybd reader accepts; use 32 KiB or less")
	}
	return fmt.Errorf("zfile: block size %d is not one of 4, 8, 16 or 32 KiB", n)
}

// WithHeaderIndex controls whether Close rewrites the header to carry the
// index fields (flags 0x1b), as overlaybd's commit does, so that a reader
// needs no trailer read. On by default.
func WithHeaderIndex(on bool) WriterOption {
	return func(c *writerConfig) error { c.headerIndex = on; return nil }
}

// WithWorkers sets how many blocks are compressed in parallel.
func WithWorkers(n int) WriterOption {
	return func(c *writerConfig) error {
		if n < 1 {
			return fmt.Errorf("zfile: %d workers", n)
		}
		c.workers = n
		return nil
	}
}

// Writer compresses a stream into a ZFile with per-block CRCs. It writes
// through an io.WriterAt starting at offset 0 (use io.NewOffsetWriter to
// place it inside a larger file) because the header is rewritten at Close.
type Writer struct {
	w      io.WriterAt
	cfg    writerConfig
	hdr    Header
	pos    int64 // next stored offset
	buf    []byte
	lens   []uint32
	total  uint64
	closed bool
	err    error
	zenc   *zstd.Encoder
}

// NewWriter writes the header and returns a Writer.
func NewWriter(w io.WriterAt, opts ...WriterOption) (*Writer, error) {
	cfg := writerConfig{algo: LZ4, blockSize: 4 << 10, headerIndex: true, workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	zw := &Writer{
		w:   w,
		cfg: cfg,
		hdr: Header{Flags: FlagHeader | FlagDataFile, BlockSize: uint32(cfg.blockSize), Algorithm: cfg.algo, Verify: true},
		pos: HeaderSize,
	}
	if cfg.algo == Zstd {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("zfile: zstd encoder: %w", err)
		}
		zw.zenc = enc
	}
	if _, err := w.WriteAt(zw.hdr.Marshal(), 0); err != nil {
		return nil, fmt.Errorf("zfile: write header: %w", err)
	}
	return zw, nil
}

// batchBlocks is how many blocks are gathered before they are compressed in
// parallel and written.
const batchBlocks = 256

// Write buffers p and compresses full batches of blocks.
func (zw *Writer) Write(p []byte) (int, error) {
	if zw.err != nil {
		return 0, zw.err
	}
	if zw.closed {
		return 0, errors.New("zfile: write after close")
	}
	n := len(p)
	batch := batchBlocks * zw.cfg.blockSize
	for len(p) > 0 {
		k := min(len(p), batch-len(zw.buf))
		zw.buf = append(zw.buf, p[:k]...)
		p = p[k:]
		if len(zw.buf) == batch {
			if err := zw.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flush compresses and writes every buffered block (the last may be short).
func (zw *Writer) flush() error {
	bs := zw.cfg.blockSize
	nb := (len(zw.buf) + bs - 1) / bs
	out := make([][]byte, nb)
	errs := make([]error, nb)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(zw.cfg.workers, nb); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c lz4.Compressor
			for i := range next {
				src := zw.buf[i*bs : min((i+1)*bs, len(zw.buf))]
				out[i], errs[i] = zw.compress(&c, src)
			}
		}()
	}
	for i := 0; i < nb; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := 0; i < nb; i++ {
		if errs[i] != nil {
			zw.err = errs[i]
			return zw.err
		}
		if _, err := zw.w.WriteAt(out[i], zw.pos); err != nil {
			zw.err = fmt.Errorf("zfile: write block %d: %w", len(zw.lens), err)
			return zw.err
		}
		zw.pos += int64(len(out[i]))
		zw.lens = append(zw.lens, uint32(len(out[i])))
	}
	zw.total += uint64(len(zw.buf))
	zw.buf = zw.buf[:0]
	return nil
}

// compress returns the stored form of one block: compressed bytes then CRC.
func (zw *Writer) compress(c *lz4.Compressor, src []byte) ([]byte, error) {
	var out []byte
	switch zw.cfg.algo {
	case LZ4:
		dst := make([]byte, lz4.CompressBlockBound(len(src))+4)
		n, err := c.CompressBlock(src, dst)
		if err != nil {
			return nil, fmt.Errorf("zfile: lz4: %w", err)
		}
		if n == 0 {
			// The destination is sized to the bound, so this means the
			// compressor gave up; a block must still be stored as LZ4.
			return nil, errors.New("zfile: lz4 produced no output")
		}
		out = dst[:n]
	case Zstd:
		out = zw.zenc.EncodeAll(src, make([]byte, 0, len(src)+64))
	}
	if len(out)+4 > MaxBlockSize {
		return nil, fmt.Errorf("zfile: stored block of %d bytes exceeds %d", len(out)+4, MaxBlockSize)
	}
	return binary.LittleEndian.AppendUint32(out, crc32c(blockSeed, out)), nil
}

// Close compresses what is buffered and writes the jump table, the trailer
// and, with WithHeaderIndex, the rewritten header. It does not close the
// underlying writer.
func (zw *Writer) Close() error {
	if zw.closed {
		return zw.err
	}
	zw.closed = true
	if zw.zenc != nil {
		defer zw.zenc.Close()
	}
	if zw.err != nil {
		return zw.err
	}
	if len(zw.buf) > 0 {
		if err := zw.flush(); err != nil {
			return err
		}
	}
	index := make([]byte, 0, 4*len(zw.lens))
	for _, l := range zw.lens {
		index = binary.LittleEndian.AppendUint32(index, l)
	}
	h := zw.hdr
	h.IndexOffset = uint64(zw.pos)
	h.IndexSize = uint64(len(zw.lens))
	h.OriginalSize = zw.total
	h.IndexCRC = crc32c(0, index)
	if _, err := zw.w.WriteAt(index, zw.pos); err != nil {
		return fmt.Errorf("zfile: write index: %w", err)
	}
	zw.pos += int64(len(index))
	t := h
	t.Flags = FlagDataFile | FlagSealed
	if _, err := zw.w.WriteAt(t.Marshal(), zw.pos); err != nil {
		return fmt.Errorf("zfile: write trailer: %w", err)
	}
	zw.pos += HeaderSize
	if zw.cfg.headerIndex {
		h.Flags = FlagHeader | FlagDataFile | FlagHeaderOverwrite
		if _, err := zw.w.WriteAt(h.Marshal(), 0); err != nil {
			return fmt.Errorf("zfile: rewrite header: %w", err)
		}
	}
	return nil
}

// Size returns the bytes written so far; after Close, the file's size.
func (zw *Writer) Size() int64 { return zw.pos }
