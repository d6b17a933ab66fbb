// Package imageref parses and resolves the image references that dejavu
// accepts on its command line, and moves images between the places they name.
//
// Three forms are understood:
//
//   - a registry reference, such as localhost:5000/app:tag or
//     registry.example.com/a/b@sha256:...;
//   - an OCI image layout on disk, oci:DIR[:TAG], where TAG selects the
//     index.json entry whose org.opencontainers.image.ref.name annotation
//     equals it (without TAG the layout must hold exactly one entry);
//   - local layer blob files, file:A,B, bottom layer first. Only some commands
//     take these, so the package parses them but refuses to load them as an
//     image.
//
// Image and Index load what a reference names; WriteImage and WriteIndex store
// an image under a reference; Copy moves an image or a whole index between
// registries and layouts without touching a byte of any manifest or blob, so
// every digest (and every signature made over one) stays valid.
//
// A layout is as untrusted as a registry: it is read by this package's own
// reader (layout.go), not go-containerregistry's, so that every blob is a
// regular file (never a symbolic link out of the layout) whose size and
// SHA-256 match its descriptor before any byte of it is used; manifests,
// indexes and configs are bounded and read whole, layers hashed whole when
// opened (OpenLayoutBlob, which the backstore uses too).
//
// Plain HTTP is always allowed for registries on loopback addresses, as local
// test registries rarely have certificates (go-containerregistry also allows
// it for private network addresses); WithInsecure extends that to any
// registry.
package imageref
