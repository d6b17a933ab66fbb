package lsmt

import (
	"encoding/binary"
	"fmt"
)

// Limits of the index entry bit fields.
const (
	MaxOffset  = 1<<50 - 1 // also the offset of a padding entry
	MaxLength  = 1<<14 - 1 // sectors in one mapping
	MaxMOffset = 1<<55 - 1
)

// MappingSize is the on-disk size of an index entry.
const MappingSize = 16

// Mapping maps Length sectors of the virtual device at Offset to the data
// area of a layer at MOffset. A zeroed mapping has no data: it reads as zeros.
// In a merged index, Tag is the index of the layer (0 = bottom).
type Mapping struct {
	Offset  uint64
	Length  uint32
	MOffset uint64
	Zeroed  bool
	Tag     uint8
}

// End returns the first sector after the mapping.
func (m Mapping) End() uint64 { return m.Offset + uint64(m.Length) }

// MEnd returns the first data sector after the mapping.
func (m Mapping) MEnd() uint64 { return m.MOffset + uint64(m.Length) }

func (m Mapping) String() string {
	z := ""
	if m.Zeroed {
		z = " zeroed"
	}
	return fmt.Sprintf("[%d+%d -> %d%s tag %d]", m.Offset, m.Length, m.MOffset, z, m.Tag)
}

func isPadding(w0 uint64) bool { return w0&MaxOffset == MaxOffset }

func decodeMapping(b []byte) Mapping {
	w0 := binary.LittleEndian.Uint64(b)
	w1 := binary.LittleEndian.Uint64(b[8:])
	return Mapping{
		Offset:  w0 & MaxOffset,
		Length:  uint32(w0 >> 50),
		MOffset: w1 & MaxMOffset,
		Zeroed:  w1>>55&1 == 1,
		Tag:     uint8(w1 >> 56),
	}
}

func appendMapping(b []byte, m Mapping) []byte {
	w0 := m.Offset&MaxOffset | uint64(m.Length)<<50
	w1 := m.MOffset & MaxMOffset
	if m.Zeroed {
		w1 |= 1 << 55
	}
	w1 |= uint64(m.Tag) << 56
	b = binary.LittleEndian.AppendUint64(b, w0)
	return binary.LittleEndian.AppendUint64(b, w1)
}

// paddingMapping is the entry overlaybd pads its index with.
var paddingMapping = Mapping{Offset: MaxOffset}
