// Package zfile reads and writes ZFile, the seekable compressed container
// that overlaybd wraps around layer blobs.
//
// A ZFile is a 512-byte header, the compressed blocks (each a fixed number of
// uncompressed bytes, LZ4 or zstd, optionally followed by a CRC32C of the
// stored bytes), a jump table of one u32 stored length per block, and a
// 512-byte trailer that repeats the header with the index fields filled in.
//
// Reading goes through an io.ReaderAt over the compressed bytes, so the same
// Reader serves a local file or a remote blob fetched by range. Every block is
// checked against its CRC before it is decoded: a mismatch is reported as a
// *BlockError wrapping ErrChecksum, never as data. CompressedRange tells which
// stored bytes a range of uncompressed bytes needs, which is what a prefetcher
// asks a registry for.
package zfile
