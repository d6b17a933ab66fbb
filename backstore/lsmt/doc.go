// Package lsmt reads and writes LSMT layers, overlaybd's log-structured block
// layer format, and merges a stack of them into one virtual block device.
//
// A sealed layer is a 4 KiB header, the data written to the layer, an index
// of mappings from virtual sectors to sectors of the data area, and a 4 KiB
// trailer that carries the index position. Layers stack: the mapping of an
// upper layer wins, gaps fall through to the layers below, a zeroed mapping
// reads as zeros and hides what is below, and bytes no layer maps read as
// zeros. All offsets and lengths in the index count 512-byte sectors.
package lsmt
