package zfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ErrChecksum marks a block whose stored CRC does not match its bytes.
var ErrChecksum = errors.New("checksum mismatch")

// ErrCorrupt marks a block that fails to decode to its expected size.
var ErrCorrupt = errors.New("corrupt block")

// BlockError reports a block that could not be served. Callers that fetch
// stored bytes over a network use Start and End to drop and refetch them.
type BlockError struct {
	Block      int
	Start, End int64 // stored byte range of the block in the ZFile
	Err        error
}

func (e *BlockError) Error() string {
	return fmt.Sprintf("zfile: block %d (stored bytes %d-%d): %v", e.Block, e.Start, e.End, e.Err)
}

func (e *BlockError) Unwrap() error { return e.Err }

// maxBlocks bounds the jump table (2^28 blocks: 1 TiB at 4 KiB blocks), so
// that a forged index size cannot drive a huge allocation.
const maxBlocks = 1 << 28

// maxBatch bounds the stored bytes one ReadAt asks the underlying reader for.
const maxBatch = 1 << 20

// Reader gives random access to the uncompressed bytes of a ZFile.
// It is safe for concurrent use.
type Reader struct {
	ra     io.ReaderAt
	hdr    Header
	starts []int64 // stored offset of block i; starts[n] is the index offset
	bs     int64
	size   int64

	bufs sync.Pool // *[]byte: stored bytes of a batch of blocks

	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdErr  error
}

// Open reads the header, trailer and jump table of the ZFile held in the
// first size bytes of ra, and checks their digests.
func Open(ra io.ReaderAt, size int64) (*Reader, error) {
	if size < 2*HeaderSize {
		return nil, fmt.Errorf("zfile: file of %d bytes is too small for a header and a trailer", size)
	}
	buf := make([]byte, HeaderSize)
	if _, err := ra.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("zfile: read header: %w", err)
	}
	h, err := ParseHeader(buf)
	if err != nil {
		return nil, err
	}
	if !h.IsHeader() {
		return nil, errors.New("zfile: first 512 bytes are a trailer, not a header")
	}
	if !h.HasIndex() {
		if _, err := ra.ReadAt(buf, size-HeaderSize); err != nil {
			return nil, fmt.Errorf("zfile: read trailer at %d: %w", size-HeaderSize, err)
		}
		t, err := ParseHeader(buf)
		if err != nil {
			return nil, fmt.Errorf("zfile: trailer at %d: %w", size-HeaderSize, err)
		}
		if t.IsHeader() || t.Flags&FlagSealed == 0 || t.Flags&FlagDataFile == 0 {
			return nil, fmt.Errorf("zfile: trailer at %d: flags %#x are not those of a sealed data trailer", size-HeaderSize, t.Flags)
		}
		h = t
	}
	if err := h.validate(size); err != nil {
		return nil, err
	}
	z := &Reader{ra: ra, hdr: h, bs: int64(h.BlockSize), size: int64(h.OriginalSize)}
	z.bufs.New = func() any { b := make([]byte, 0, z.maxStored()); return &b }
	if err := z.loadIndex(); err != nil {
		return nil, err
	}
	return z, nil
}

func (h Header) validate(size int64) error {
	if h.BlockSize < MinBlockSize || h.BlockSize > MaxBlockSize || h.BlockSize%512 != 0 {
		return fmt.Errorf("zfile: block size %d is outside %d..%d or not a multiple of 512", h.BlockSize, MinBlockSize, MaxBlockSize)
	}
	if h.Algorithm != LZ4 && h.Algorithm != Zstd {
		return fmt.Errorf("zfile: compression %v is not supported", h.Algorithm)
	}
	if h.UseDict || h.DictSize != 0 {
		return fmt.Errorf("zfile: dictionaries (dict_size %d) are not supported", h.DictSize)
	}
	if h.Flags&FlagIndexCompressed != 0 {
		return errors.New("zfile: compressed jump tables are not supported")
	}
	if h.IndexSize > maxBlocks {
		return fmt.Errorf("zfile: index claims %d blocks, more than the %d allowed", h.IndexSize, maxBlocks)
	}
	end := size - HeaderSize
	if h.IndexOffset < HeaderSize || h.IndexOffset > uint64(end) || h.IndexSize*4 > uint64(end)-h.IndexOffset {
		return fmt.Errorf("zfile: index of %d blocks at offset %d does not fit before the trailer at %d", h.IndexSize, h.IndexOffset, end)
	}
	n, bs := h.IndexSize, uint64(h.BlockSize)
	if n == 0 && h.OriginalSize != 0 || n > 0 && (h.OriginalSize <= (n-1)*bs || h.OriginalSize > n*bs) {
		return fmt.Errorf("zfile: original size %d does not match %d blocks of %d bytes", h.OriginalSize, n, bs)
	}
	return nil
}

// maxStored bounds one stored block: the worst expansion of LZ4 or zstd on
// incompressible input, plus the CRC.
func (z *Reader) maxStored() int64 { return z.bs + z.bs/255 + 1024 }

func (z *Reader) loadIndex() error {
	h := z.hdr
	n := int(h.IndexSize)
	raw := make([]byte, 0, min(n*4, maxBatch))
	chunk := make([]byte, min(n*4, maxBatch))
	// Read in bounded chunks so that memory grows only with bytes that exist.
	for off := 0; off < n*4; off += maxBatch {
		c := chunk[:min(maxBatch, n*4-off)]
		if _, err := z.ra.ReadAt(c, int64(h.IndexOffset)+int64(off)); err != nil {
			return fmt.Errorf("zfile: read index at %d: %w", int64(h.IndexOffset)+int64(off), err)
		}
		raw = append(raw, c...)
	}
	if h.Flags&FlagDigest != 0 {
		if got := crc32c(0, raw); got != h.IndexCRC {
			return fmt.Errorf("zfile: index checksum mismatch: stored %08x, computed %08x", h.IndexCRC, got)
		}
	}
	z.starts = make([]int64, n+1)
	pos := int64(HeaderSize) + int64(h.DictSize)
	min := int64(1)
	if h.Verify {
		min = 5
	}
	for i := 0; i < n; i++ {
		z.starts[i] = pos
		l := int64(binary.LittleEndian.Uint32(raw[4*i:]))
		if l < min || l > z.maxStored() {
			return fmt.Errorf("zfile: index entry %d: stored length %d outside %d..%d", i, l, min, z.maxStored())
		}
		pos += l
	}
	z.starts[n] = pos
	if pos != int64(h.IndexOffset) {
		return fmt.Errorf("zfile: blocks end at %d but the index starts at %d", pos, h.IndexOffset)
	}
	return nil
}

// Header returns the effective header: the trailer, or the rewritten header.
func (z *Reader) Header() Header { return z.hdr }

// Size returns the uncompressed size.
func (z *Reader) Size() int64 { return z.size }

// BlockSize returns the uncompressed size of every block but the last.
func (z *Reader) BlockSize() int { return int(z.bs) }

// Blocks returns the number of blocks.
func (z *Reader) Blocks() int { return len(z.starts) - 1 }

// BlockRange returns the stored byte range [start, end) of block i.
func (z *Reader) BlockRange(i int) (start, end int64) { return z.starts[i], z.starts[i+1] }

// StoredSize returns the stored length of every block, in order; it is what
// the jump table holds.
func (z *Reader) StoredSize(i int) int64 { return z.starts[i+1] - z.starts[i] }

// CompressedRange returns the stored byte range [start, end) that holds the
// uncompressed bytes [off, off+n), clipped to the file; start == end when the
// range is empty.
func (z *Reader) CompressedRange(off, n int64) (start, end int64) {
	if n <= 0 {
		return 0, 0
	}
	if off < 0 {
		n += off // cannot overflow: n > 0 > off
		off = 0
	}
	if n <= 0 || off >= z.size {
		return 0, 0
	}
	// Clip n before adding, so that off+n cannot overflow.
	last := off + min(n, z.size-off) - 1
	return z.starts[off/z.bs], z.starts[last/z.bs+1]
}

// ReadAt reads uncompressed bytes. Every block is verified before decoding.
func (z *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("zfile: negative offset %d", off)
	}
	if off >= z.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := int64(len(p))
	n := min(want, z.size-off)
	if n == 0 {
		return 0, nil
	}
	first, last := int(off/z.bs), int((off+n-1)/z.bs)
	done := int64(0)
	bufp := z.bufs.Get().(*[]byte)
	defer z.bufs.Put(bufp)
	stored := *bufp
	var block []byte // for blocks that only partly land in p
	for i := first; i <= last; {
		// Gather as many consecutive blocks as fit in one batch read.
		j := i + 1
		for j <= last && z.starts[j+1]-z.starts[i] <= maxBatch {
			j++
		}
		span := z.starts[j] - z.starts[i]
		if int64(cap(stored)) < span {
			stored = make([]byte, span)
			*bufp = stored
		}
		stored = stored[:span]
		if _, err := z.ra.ReadAt(stored, z.starts[i]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return int(done), fmt.Errorf("zfile: read blocks %d-%d (stored bytes %d-%d): %w", i, j-1, z.starts[i], z.starts[j], err)
		}
		for k := i; k < j; k++ {
			s := stored[z.starts[k]-z.starts[i] : z.starts[k+1]-z.starts[i]]
			bstart := int64(k) * z.bs
			blen := min(z.bs, z.size-bstart)
			// Decode straight into p when the whole block lands there.
			lo := max(off, bstart)
			hi := min(off+n, bstart+blen)
			direct := lo == bstart && hi == bstart+blen
			var dst []byte
			if direct {
				dst = p[lo-off : hi-off]
			} else {
				if block == nil {
					block = make([]byte, z.bs)
				}
				dst = block[:blen]
			}
			if err := z.decodeBlock(k, s, dst); err != nil {
				return int(done), err
			}
			if !direct {
				copy(p[lo-off:hi-off], dst[lo-bstart:hi-bstart])
			}
			done += hi - lo
		}
		i = j
	}
	if n < want {
		return int(n), io.EOF
	}
	return int(n), nil
}

// decodeBlock checks block k's CRC and decompresses it into dst, which has
// exactly the block's uncompressed length.
func (z *Reader) decodeBlock(k int, s, dst []byte) error {
	berr := func(err error) error {
		return &BlockError{Block: k, Start: z.starts[k], End: z.starts[k+1], Err: err}
	}
	if z.hdr.Verify {
		body := s[:len(s)-4]
		want := binary.LittleEndian.Uint32(s[len(s)-4:])
		if got := crc32c(blockSeed, body); got != want {
			return berr(fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, want, got))
		}
		s = body
	}
	switch z.hdr.Algorithm {
	case LZ4:
		got, err := lz4.UncompressBlock(s, dst)
		if err != nil {
			return berr(fmt.Errorf("%w: lz4: %v", ErrCorrupt, err))
		}
		if got != len(dst) {
			return berr(fmt.Errorf("%w: lz4 gave %d bytes, want %d", ErrCorrupt, got, len(dst)))
		}
	case Zstd:
		dec, err := z.zstd()
		if err != nil {
			return berr(err)
		}
		out, err := dec.DecodeAll(s, dst[:0])
		if err != nil {
			return berr(fmt.Errorf("%w: zstd: %v", ErrCorrupt, err))
		}
		if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
			return berr(fmt.Errorf("%w: zstd gave %d bytes, want %d", ErrCorrupt, len(out), len(dst)))
		}
	}
	return nil
}

func (z *Reader) zstd() (*zstd.Decoder, error) {
	z.zstdOnce.Do(func() {
		z.zstdDec, z.zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(uint64(MaxBlockSize)*2),
			zstd.WithDecoderLowmem(true))
	})
	return z.zstdDec, z.zstdErr
}

// UncompressedRange returns the uncompressed bytes [off, off+n) decoded from
// the blocks whose stored bytes intersect [start, end); n is 0 when none do.
func (z *Reader) UncompressedRange(start, end int64) (off, n int64) {
	nb := z.Blocks()
	if nb == 0 || end <= z.starts[0] || start >= z.starts[nb] || start >= end {
		return 0, 0
	}
	// First block that ends after start, last block that starts before end.
	first := sort.Search(nb, func(i int) bool { return z.starts[i+1] > start })
	last := sort.Search(nb, func(i int) bool { return z.starts[i] >= end }) - 1
	if last < first {
		return 0, 0
	}
	off = int64(first) * z.bs
	return off, min(int64(last+1)*z.bs, z.size) - off
}
