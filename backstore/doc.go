// Package backstore serves an overlaybd image as a virtual block device whose
// bytes come lazily from a registry.
//
// Open resolves the image, reads each layer's headers and indexes with a few
// range requests, and merges the layers. Reads of the device are mapped
// through the merged index to byte ranges of the layer blobs; what the local
// cache lacks is fetched with closed HTTP range requests, in fetch units,
// retried on errors and stalls, shared between concurrent readers, and kept
// in a persistent cache that survives restarts. ZFile block checksums are
// verified on every decode: a range that fails them is dropped and fetched
// again, and if it keeps failing the read fails; wrong bytes are never
// returned.
//
// Observers see every device read and every blob fetch, which is what
// tracing and metrics build on.
//
// Inspect and WriteRaw read an image the same lazy way but accept what
// Open refuses: layers that are not overlaybd (Inspect says why) and local
// layer blob files.
package backstore
