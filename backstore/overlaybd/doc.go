// Package overlaybd ties the overlaybd formats into layer blobs and images.
//
// A layer blob as stored in a registry is an LSMT layer, usually compressed
// into a ZFile and often wrapped in a one-file tar so that tools that expect
// tar layers accept it. OpenBlob peels those wrappers off and maps byte
// ranges of the layer back to byte ranges of the blob, which is what a lazy
// reader asks a registry for. WriteBlob writes the same structure the real
// overlaybd tools write. Build and Convert make whole images, annotated so
// that overlaybd-aware runtimes recognise them: Build makes a directory an
// ext4 file system in one overlaybd layer; Convert turns each layer of an
// ordinary OCI image into one overlaybd layer of the ext4 blocks it changes,
// applied by e2fsprogs' debugfs, reproducibly (UUIDs from chain IDs, fixed
// times and ids) and with a cache of converted layers.
package overlaybd
