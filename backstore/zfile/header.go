package zfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of the header and of the trailer.
const HeaderSize = 512

// headerStructSize is the value of the size field: the bytes of the header
// that carry fields, the rest is zero padding.
const headerStructSize = 96

// Algorithm identifies a block compressor.
type Algorithm uint8

// Algorithms known to overlaybd. MiniLZO is recognised but not supported.
const (
	MiniLZO Algorithm = 0
	LZ4     Algorithm = 1
	Zstd    Algorithm = 2
)

func (a Algorithm) String() string {
	switch a {
	case MiniLZO:
		return "minilzo"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("algorithm(%d)", uint8(a))
}

// ParseAlgorithm maps "lz4" or "zstd" to an Algorithm.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch s {
	case "lz4", "LZ4":
		return LZ4, nil
	case "zstd", "ZSTD":
		return Zstd, nil
	}
	return 0, fmt.Errorf("zfile: unknown compression %q (want lz4 or zstd)", s)
}

// Header flag bits.
const (
	FlagHeader          = 1 << 0 // this is the header (clear: trailer)
	FlagDataFile        = 1 << 1 // a data file, not an index file
	FlagSealed          = 1 << 2 // the file is complete
	FlagHeaderOverwrite = 1 << 3 // the header was rewritten and carries the index fields
	FlagDigest          = 1 << 4 // the digest field holds the CRC of this header
	FlagIndexCompressed = 1 << 5 // the jump table is compressed (not supported)
)

// Block sizes the format allows.
const (
	MinBlockSize = 4 << 10
	MaxBlockSize = 64 << 10
)

var (
	magic0 = []byte("ZFile\x00\x01\x00")
	magic1 = []byte("tuji.yyf@Alibaba")

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// ErrNotZFile is returned when the bytes do not start with the ZFile magic.
var ErrNotZFile = errors.New("zfile: not a ZFile (bad magic)")

// blockSeed is the initial value of the per-block CRC.
const blockSeed = 100007

// crc32c computes CRC32C from seed with neither pre- nor post-inversion, the
// way overlaybd's crc32c_extend does; Go's Update inverts on entry and exit,
// so the seed and the result are inverted around it.
func crc32c(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// Header is a ZFile header or trailer.
type Header struct {
	Flags        uint64
	Digest       uint32
	IndexOffset  uint64 // byte offset of the jump table
	IndexSize    uint64 // number of blocks
	OriginalSize uint64 // uncompressed size
	IndexCRC     uint32
	BlockSize    uint32
	Algorithm    Algorithm
	Level        uint8
	UseDict      bool
	DictSize     uint32
	Verify       bool // each block ends with a CRC32C of its stored bytes
}

// IsHeader reports whether h is a header rather than a trailer.
func (h Header) IsHeader() bool { return h.Flags&FlagHeader != 0 }

// HasIndex reports whether h carries valid index fields: a sealed trailer, or
// a header rewritten after sealing.
func (h Header) HasIndex() bool {
	if h.IsHeader() {
		return h.Flags&FlagHeaderOverwrite != 0
	}
	return h.Flags&FlagSealed != 0
}

// ParseHeader decodes a header or trailer and checks its magic and, when the
// digest flag is set, its digest.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("zfile: header: %d bytes, want %d", len(b), HeaderSize)
	}
	b = b[:HeaderSize]
	if !bytes.Equal(b[0:8], magic0) || !bytes.Equal(b[8:24], magic1) {
		return h, ErrNotZFile
	}
	le := binary.LittleEndian
	if n := le.Uint32(b[24:]); n != headerStructSize {
		return h, fmt.Errorf("zfile: header: size field is %d, want %d", n, headerStructSize)
	}
	h.Digest = le.Uint32(b[28:])
	h.Flags = le.Uint64(b[32:])
	h.IndexOffset = le.Uint64(b[40:])
	h.IndexSize = le.Uint64(b[48:])
	h.OriginalSize = le.Uint64(b[56:])
	h.IndexCRC = le.Uint32(b[64:])
	h.BlockSize = le.Uint32(b[72:])
	h.Algorithm = Algorithm(b[76])
	h.Level = b[77]
	h.UseDict = b[78] != 0
	h.DictSize = le.Uint32(b[84:])
	h.Verify = b[88] != 0
	if h.Flags&FlagDigest != 0 {
		var tmp [HeaderSize]byte
		copy(tmp[:], b)
		le.PutUint32(tmp[28:], 0)
		if got := crc32c(0, tmp[:]); got != h.Digest {
			return h, fmt.Errorf("zfile: header digest mismatch: stored %08x, computed %08x", h.Digest, got)
		}
	}
	return h, nil
}

// Marshal encodes h into a 512-byte header with the digest computed (the
// digest flag is always set, as overlaybd does).
func (h Header) Marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b[0:], magic0)
	copy(b[8:], magic1)
	le := binary.LittleEndian
	le.PutUint32(b[24:], headerStructSize)
	flags := h.Flags | FlagDigest
	le.PutUint64(b[32:], flags)
	le.PutUint64(b[40:], h.IndexOffset)
	le.PutUint64(b[48:], h.IndexSize)
	le.PutUint64(b[56:], h.OriginalSize)
	le.PutUint32(b[64:], h.IndexCRC)
	le.PutUint32(b[72:], h.BlockSize)
	b[76] = byte(h.Algorithm)
	b[77] = h.Level
	if h.UseDict {
		b[78] = 1
	}
	le.PutUint32(b[84:], h.DictSize)
	if h.Verify {
		b[88] = 1
	}
	le.PutUint32(b[28:], crc32c(0, b))
	return b
}

// IsZFile reports whether b starts with the ZFile magic.
func IsZFile(b []byte) bool {
	return len(b) >= 24 && bytes.Equal(b[0:8], magic0) && bytes.Equal(b[8:24], magic1)
}
