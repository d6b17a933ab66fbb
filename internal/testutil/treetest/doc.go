// Package treetest makes directory trees with the awkward cases a root file
// system has (sparse and zero-filled files, symlinks, hard links, long names,
// modes and owners) and compares two trees entry by entry, for tests that
// push a tree through an image and read it back.
package treetest
