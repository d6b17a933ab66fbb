// Package overlaybd ties the overlaybd formats into layer blobs and images.
//
// A layer blob as stored in a registry is an LSMT layer, usually compressed
// into a ZFile and often wrapped in a one-file tar so that tools that expect
// tar layers accept it. OpenBlob peels those wrappers off and maps byte
// ranges of the layer back to byte ranges of the blob, which is what a lazy
// reader asks a registry for. WriteBlob writes the same structure the real
// overlaybd tools write. Build and Convert make whole images: a directory or
// an ordinary OCI image becomes an ext4 file system in one overlaybd layer,
// annotated so that overlaybd-aware runtimes recognise it.
package overlaybd
