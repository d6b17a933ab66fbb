package lsmt

import (
	"errors"
	"fmt"
	"io"
)

// maxMappings bounds the index of one layer (64 Mi entries, 1 GiB of index),
// so that a forged index size cannot drive a huge allocation.
const maxMappings = 1 << 26

// indexChunk is how much of the index one ReadAt asks for.
const indexChunk = 1 << 20

// Layer is an opened sealed LSMT layer.
type Layer struct {
	ra    io.ReaderAt
	size  int64
	hdr   Header
	index []Mapping // padding removed
}

// OpenLayer reads the header, trailer and index of the sealed layer held in
// the first size bytes of ra and checks that every mapping lies inside the
// virtual device and the data area.
func OpenLayer(ra io.ReaderAt, size int64) (*Layer, error) {
	if size < 2*HeaderSize {
		return nil, fmt.Errorf("lsmt: layer of %d bytes is too small for a header and a trailer", size)
	}
	buf := make([]byte, HeaderSize)
	if _, err := ra.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("lsmt: read header: %w", err)
	}
	h, err := ParseHeader(buf)
	if err != nil {
		return nil, err
	}
	if !h.IsHeader() {
		return nil, errors.New("lsmt: first 4096 bytes are a trailer, not a header")
	}
	if h.Flags&FlagDataFile == 0 {
		return nil, errors.New("lsmt: an index-only file, not a data layer")
	}
	toff := size - HeaderSize
	if _, err := ra.ReadAt(buf, toff); err != nil {
		return nil, fmt.Errorf("lsmt: read trailer at %d: %w", toff, err)
	}
	t, err := ParseHeader(buf)
	if err != nil {
		return nil, fmt.Errorf("lsmt: trailer at %d: %w (is the layer sealed?)", toff, err)
	}
	if t.IsHeader() || t.Flags&FlagSealed == 0 {
		return nil, fmt.Errorf("lsmt: trailer at %d: flags %#x are not those of a sealed trailer", toff, t.Flags)
	}
	if t.VirtualSize%SectorSize != 0 || t.VirtualSize/SectorSize > MaxOffset {
		return nil, fmt.Errorf("lsmt: virtual size %d is not a whole number of sectors below 2^50", t.VirtualSize)
	}
	if t.IndexOffset < HeaderSize || t.IndexOffset%SectorSize != 0 || t.IndexOffset > uint64(toff) {
		return nil, fmt.Errorf("lsmt: index offset %d is outside the layer (data %d..%d, sector aligned)", t.IndexOffset, HeaderSize, toff)
	}
	if t.IndexSize > maxMappings || t.IndexSize > (uint64(toff)-t.IndexOffset)/MappingSize {
		return nil, fmt.Errorf("lsmt: index of %d entries at %d does not fit before the trailer at %d", t.IndexSize, t.IndexOffset, toff)
	}
	l := &Layer{ra: ra, size: size, hdr: t}
	if err := l.loadIndex(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Layer) loadIndex() error {
	h := l.hdr
	total := int(h.IndexSize) * MappingSize
	chunk := make([]byte, min(total, indexChunk))
	dataEnd := h.IndexOffset / SectorSize
	vsectors := h.VirtualSize / SectorSize
	var prevEnd uint64
	for off := 0; off < total; off += indexChunk {
		c := chunk[:min(indexChunk, total-off)]
		if _, err := l.ra.ReadAt(c, int64(h.IndexOffset)+int64(off)); err != nil {
			return fmt.Errorf("lsmt: read index at %d: %w", int64(h.IndexOffset)+int64(off), err)
		}
		for i := 0; i < len(c); i += MappingSize {
			n := (off + i) / MappingSize
			m := decodeMapping(c[i:])
			if isPadding(m.Offset) {
				continue
			}
			m.Tag = 0 // runtime use only
			switch {
			case m.Length == 0:
				return fmt.Errorf("lsmt: index entry %d %v has length 0", n, m)
			case m.Offset < prevEnd:
				return fmt.Errorf("lsmt: index entry %d %v overlaps or precedes the previous one (ends at %d)", n, m, prevEnd)
			case m.End() > vsectors:
				return fmt.Errorf("lsmt: index entry %d %v goes past the virtual size (%d sectors)", n, m, vsectors)
			case !m.Zeroed && (m.MOffset < HeaderSize/SectorSize || m.MEnd() > dataEnd):
				return fmt.Errorf("lsmt: index entry %d %v points outside the data area (sectors %d..%d)", n, m, HeaderSize/SectorSize, dataEnd)
			}
			prevEnd = m.End()
			l.index = append(l.index, m)
		}
	}
	return nil
}

// Header returns the trailer, which holds the index fields of a sealed layer.
func (l *Layer) Header() Header { return l.hdr }

// VirtualSize returns the size of the virtual device in bytes.
func (l *Layer) VirtualSize() int64 { return int64(l.hdr.VirtualSize) }

// Index returns the layer's mappings, padding removed. Do not modify it.
func (l *Layer) Index() []Mapping { return l.index }

// ReaderAt returns the reader over the layer file.
func (l *Layer) ReaderAt() io.ReaderAt { return l.ra }

// Stats summarises a layer's index.
type Stats struct {
	Mappings    int
	Padding     int
	DataBytes   int64 // bytes mapped to data
	ZeroedBytes int64 // bytes mapped as zeroed
}

// Stats counts the layer's mappings and the bytes they cover.
func (l *Layer) Stats() Stats {
	s := Stats{Mappings: len(l.index), Padding: int(l.hdr.IndexSize) - len(l.index)}
	for _, m := range l.index {
		if m.Zeroed {
			s.ZeroedBytes += int64(m.Length) * SectorSize
		} else {
			s.DataBytes += int64(m.Length) * SectorSize
		}
	}
	return s
}
