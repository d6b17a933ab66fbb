// Package busybox makes the small test image that the integration tests of
// the CLI and the snapshotter start: a static busybox and 120 data files in
// six directories, whose command reads every data file. It builds the tree
// into a one-layer overlaybd image in a test registry and lists what the
// files' md5 sums are, as `md5sum /data/*/*` in a container prints them.
package busybox
