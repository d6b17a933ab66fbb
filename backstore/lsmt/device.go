package lsmt

import (
	"errors"
	"fmt"
	"io"
)

// Device is the merged virtual block device of a stack of layers. It reads
// layer data through the layers' io.ReaderAts and is safe for concurrent use
// when they are.
type Device struct {
	layers []io.ReaderAt
	index  *Index
	size   int64
}

// NewDevice stacks layers, bottom first. The virtual size is the top layer's.
func NewDevice(layers ...*Layer) (*Device, error) {
	if len(layers) == 0 {
		return nil, errors.New("lsmt: no layers")
	}
	idx := make([][]Mapping, len(layers))
	ras := make([]io.ReaderAt, len(layers))
	for i, l := range layers {
		idx[i] = l.Index()
		ras[i] = l.ReaderAt()
	}
	x, err := Merge(idx...)
	if err != nil {
		return nil, err
	}
	return NewDeviceFromIndex(x, ras, layers[len(layers)-1].VirtualSize())
}

// NewDeviceFromIndex builds a device from a merged index and a reader for
// each layer (indexed by tag), for callers that load indexes themselves.
func NewDeviceFromIndex(x *Index, layers []io.ReaderAt, size int64) (*Device, error) {
	for _, m := range x.m {
		if int(m.Tag) >= len(layers) {
			return nil, fmt.Errorf("lsmt: mapping %v names layer %d of %d", m, m.Tag, len(layers))
		}
	}
	return &Device{layers: layers, index: x, size: size}, nil
}

// Size returns the virtual size in bytes.
func (d *Device) Size() int64 { return d.size }

// Index returns the merged index.
func (d *Device) Index() *Index { return d.index }

// ReadAt reads the virtual device at any byte offset.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("lsmt: negative offset %d", off)
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := min(int64(len(p)), d.size-off)
	start := uint64(off) / SectorSize
	end := (uint64(off+n) + SectorSize - 1) / SectorSize
	pos := off // next byte of p to fill, in device coordinates
	var buf [16]Mapping
	for _, m := range d.index.Lookup(buf[:0], start, end) {
		mStart := int64(m.Offset) * SectorSize
		mEnd := int64(m.End()) * SectorSize
		lo, hi := max(mStart, off), min(mEnd, off+n)
		clear(p[pos-off : lo-off]) // a gap before this mapping
		if m.Zeroed {
			clear(p[lo-off : hi-off])
		} else {
			src := int64(m.MOffset)*SectorSize + (lo - mStart)
			if _, err := d.layers[m.Tag].ReadAt(p[lo-off:hi-off], src); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return int(pos - off), fmt.Errorf("lsmt: layer %d: read %d bytes at %d for device offset %d: %w", m.Tag, hi-lo, src, lo, err)
			}
		}
		pos = hi
	}
	clear(p[pos-off : n])
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}
