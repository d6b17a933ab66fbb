// Package registry is dejavu's embedded OCI registry: go-containerregistry's
// in-process registry with the referrers API on and blobs on disk, plus a
// journal of manifest writes so that tags, digests and referrers survive a
// restart like the blobs do.
package registry
