package lsmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderSize is the size of the header and of the trailer.
const HeaderSize = 4096

// SectorSize is the unit of every offset and length in the index.
const SectorSize = 512

// headerStructSize is the value of the size field: the bytes of the header
// that carry fields.
const headerStructSize = 390

// Header flag bits.
const (
	FlagHeader    = 1 << 0 // header (clear: trailer)
	FlagDataFile  = 1 << 1 // data file (clear: index file)
	FlagSealed    = 1 << 2 // sealed: the trailer holds the index fields
	FlagGCLayer   = 1 << 3
	FlagSparseRW  = 1 << 4
	FlagInfoValid = 1 << 5
)

// Versions written by overlaybd (v1.1: UUIDs checked).
const (
	Version    = 1
	SubVersion = 1
)

const uuidLen = 37 // 36 characters and a NUL

// NullUUID is what overlaybd writes when a layer has no parent.
const NullUUID = "00000000-0000-0000-0000-000000000000"

var (
	magic0 = []byte("LSMT\x00\x01\x02\x00")
	magic1 = []byte{0x65, 0x7E, 0x63, 0xD2, 0x94, 0x44, 0x08, 0x4C, 0xA2, 0xD2, 0xC8, 0xEC, 0x4F, 0xCF, 0xAE, 0x8A}
)

// ErrNotLSMT is returned when the bytes do not start with the LSMT magic.
var ErrNotLSMT = errors.New("lsmt: not an LSMT layer (bad magic)")

// Header is an LSMT header or trailer.
type Header struct {
	Flags       uint32
	IndexOffset uint64 // bytes
	IndexSize   uint64 // entries, padding included
	VirtualSize uint64 // bytes
	UUID        string
	ParentUUID  string
	Version     uint8
	SubVersion  uint8
	UserTag     string
}

// IsHeader reports whether h is a header rather than a trailer.
func (h Header) IsHeader() bool { return h.Flags&FlagHeader != 0 }

// ParseHeader decodes a header or trailer and checks its magic.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("lsmt: header: %d bytes, want %d", len(b), HeaderSize)
	}
	if !bytes.Equal(b[0:8], magic0) || !bytes.Equal(b[8:24], magic1) {
		return h, ErrNotLSMT
	}
	le := binary.LittleEndian
	if n := le.Uint32(b[24:]); n != headerStructSize {
		return h, fmt.Errorf("lsmt: header: size field is %d, want %d", n, headerStructSize)
	}
	h.Flags = le.Uint32(b[28:])
	h.IndexOffset = le.Uint64(b[32:])
	h.IndexSize = le.Uint64(b[40:])
	h.VirtualSize = le.Uint64(b[48:])
	h.UUID = cstring(b[56 : 56+uuidLen])
	h.ParentUUID = cstring(b[93 : 93+uuidLen])
	h.Version = b[132]
	h.SubVersion = b[133]
	h.UserTag = cstring(b[134:390])
	return h, nil
}

// Marshal encodes h into a 4096-byte header.
func (h Header) Marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, magic0)
	copy(b[8:], magic1)
	le := binary.LittleEndian
	le.PutUint32(b[24:], headerStructSize)
	le.PutUint32(b[28:], h.Flags)
	le.PutUint64(b[32:], h.IndexOffset)
	le.PutUint64(b[40:], h.IndexSize)
	le.PutUint64(b[48:], h.VirtualSize)
	copy(b[56:56+uuidLen-1], h.UUID)
	copy(b[93:93+uuidLen-1], h.ParentUUID)
	b[132] = h.Version
	b[133] = h.SubVersion
	copy(b[134:390-1], h.UserTag)
	return b
}

// IsLSMT reports whether b starts with the LSMT magic.
func IsLSMT(b []byte) bool {
	return len(b) >= 24 && bytes.Equal(b[0:8], magic0) && bytes.Equal(b[8:24], magic1)
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
