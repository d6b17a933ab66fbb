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
package trace
