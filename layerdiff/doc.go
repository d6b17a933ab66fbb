// Package layerdiff makes ordinary OCI image layers from the difference
// between two directory trees: what a Dockerfile step adds, changes or
// removes (as whiteouts), so that an image can be built the way users build
// theirs, one layer per step, from snapshots of a tree taken between the
// steps. dejavu uses it to build the multi-layer images its conversion and
// benchmarks start from; it is not a general image builder (no caching, no
// build context).
//
// Entries are compared by type, mode, owner, size, modification time,
// symbolic link target and extended attributes, not by content: the tree
// snapshots are copies that keep those (cp -a), and a step that rewrites a
// file changes its time.
package layerdiff
