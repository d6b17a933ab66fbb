// Package testreg starts an in-process registry for a test and stops it at
// the test's end: by default dejavu's embedded registry (internal/registry,
// the one `dejavu registry` serves, which answers multi-range requests), or
// go-containerregistry's plain in-memory registry for tests that depend on
// its exact behaviour (it answers only the first range of a multi-range
// request). A Counter counts what a registry, or a proxy in front of another
// one, is asked; HelloWorld pushes the real converted hello-world image from
// the shared fixtures.
package testreg
