package lsmt

import (
	"bufio"
	"fmt"
	"io"
)

// Extent is a byte range of the virtual device that a new layer holds:
// data read from the source, or zeros (a trim) when Zeroed is set.
// Offset and Length are multiples of SectorSize.
type Extent struct {
	Offset, Length int64
	Zeroed         bool
}

// LayerOption configures WriteLayer.
type LayerOption func(*Header)

// WithUUID sets the layer's UUID.
func WithUUID(u string) LayerOption { return func(h *Header) { h.UUID = u } }

// WithParentUUID sets the UUID of the layer below.
func WithParentUUID(u string) LayerOption { return func(h *Header) { h.ParentUUID = u } }

// WithUserTag sets the commit message (at most 255 bytes are kept).
func WithUserTag(s string) LayerOption { return func(h *Header) { h.UserTag = s } }

// WriteLayer writes a sealed layer, laid out as overlaybd's commit lays it
// out: a header without index fields, the data of the extents in offset
// order from sector 8, the index (adjacent mappings joined, padded with
// padding entries to a multiple of 256 entries) and a trailer that holds the
// index fields. Extents must be sorted, non-overlapping and inside the
// virtual size. It returns the trailer.
func WriteLayer(w io.Writer, src io.ReaderAt, extents []Extent, virtualSize int64, opts ...LayerOption) (Header, error) {
	h := Header{
		Flags:       FlagHeader | FlagDataFile | FlagSealed,
		VirtualSize: uint64(virtualSize),
		ParentUUID:  NullUUID,
		Version:     Version,
		SubVersion:  SubVersion,
	}
	for _, o := range opts {
		o(&h)
	}
	if len(h.UserTag) > 255 {
		h.UserTag = h.UserTag[:255]
	}
	if virtualSize <= 0 || virtualSize%SectorSize != 0 {
		return h, fmt.Errorf("lsmt: virtual size %d is not a positive multiple of %d", virtualSize, SectorSize)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.Write(h.Marshal()); err != nil {
		return h, fmt.Errorf("lsmt: write header: %w", err)
	}
	var index []Mapping
	moff := uint64(HeaderSize / SectorSize)
	var prevEnd int64
	for i, e := range extents {
		if e.Offset%SectorSize != 0 || e.Length%SectorSize != 0 || e.Length <= 0 {
			return h, fmt.Errorf("lsmt: extent %d (%d+%d) is not a non-empty whole number of sectors", i, e.Offset, e.Length)
		}
		if e.Offset < prevEnd || e.Length > virtualSize-e.Offset { // no overflow: 0 <= prevEnd <= Offset
			return h, fmt.Errorf("lsmt: extent %d (%d+%d) overlaps the previous one or passes the virtual size %d", i, e.Offset, e.Length, virtualSize)
		}
		prevEnd = e.Offset + e.Length
		if !e.Zeroed {
			if _, err := io.Copy(bw, io.NewSectionReader(src, e.Offset, e.Length)); err != nil {
				return h, fmt.Errorf("lsmt: copy extent %d (%d+%d): %w", i, e.Offset, e.Length, err)
			}
		}
		index = appendExtent(index, e, moff)
		if !e.Zeroed {
			moff += uint64(e.Length / SectorSize)
		}
	}
	h.IndexOffset = moff * SectorSize
	n := len(index)
	const perPage = HeaderSize / MappingSize
	if r := n % perPage; r != 0 {
		for k := r; k < perPage; k++ {
			index = append(index, paddingMapping)
		}
	}
	h.IndexSize = uint64(len(index))
	raw := make([]byte, 0, len(index)*MappingSize)
	for _, m := range index {
		raw = appendMapping(raw, m)
	}
	if _, err := bw.Write(raw); err != nil {
		return h, fmt.Errorf("lsmt: write index: %w", err)
	}
	h.Flags = FlagDataFile | FlagSealed
	if _, err := bw.Write(h.Marshal()); err != nil {
		return h, fmt.Errorf("lsmt: write trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return h, fmt.Errorf("lsmt: flush: %w", err)
	}
	return h, nil
}

// appendExtent adds the mappings of e, whose data (if any) starts at data
// sector moff, joining it to the previous mapping when they are contiguous on
// both sides, as overlaybd's commit does, and splitting at MaxLength.
func appendExtent(index []Mapping, e Extent, moff uint64) []Mapping {
	off := uint64(e.Offset / SectorSize)
	left := uint64(e.Length / SectorSize)
	for left > 0 {
		if n := len(index); n > 0 {
			p := &index[n-1]
			if p.End() == off && p.MEnd() == moff && p.Zeroed == e.Zeroed && uint64(p.Length) < MaxLength-1 {
				k := min(left, MaxLength-1-uint64(p.Length))
				p.Length += uint32(k)
				off, left = off+k, left-k
				if !e.Zeroed {
					moff += k
				}
				continue
			}
		}
		k := min(left, MaxLength-1)
		index = append(index, Mapping{Offset: off, Length: uint32(k), MOffset: moff, Zeroed: e.Zeroed})
		off, left = off+k, left-k
		if !e.Zeroed {
			moff += k
		}
	}
	return index
}
