// Package trace is dejavu's record of what a program reads while it starts:
// which byte ranges of which layer blobs (in blob coordinates, what a range
// request fetches), first needed when, bound to the image manifest and its
// ordered layer digests.
//
// A trace is recorded from a backstore's observer during a warm-up start,
// runs are merged, and the result is encoded (msgpack, zstd, behind a magic
// and a version) and stored as an OCI artifact that refers to the image, so
// that the image digest never changes. It can also be exported to
// overlaybd's own trace file format.
//
// A trace is untrusted input: anyone who can push a referrer to an image
// chooses the trace its starts find. Decoding is bounded by the encoded
// size (see MaxRecords and Unmarshal), Validate refuses what the format
// forbids, CheckLayers refuses records past the layers of the image they
// are for, and Attach refuses what a start would. Every refusal wraps
// ErrRefused.
package trace
