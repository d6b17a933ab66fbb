// Package timed times one start of an image: it mounts the image lazily
// (lazymount), starts its program as a container runtime would (launch),
// and measures the time from the start of the mount to ready.
//
// `dejavu run`, the recorder (package record) and the experiments (package
// experiment) all time their starts through it, so that a start means the
// same thing everywhere. DropPageCache makes the next start cold.
package timed
