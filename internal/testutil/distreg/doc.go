// Package distreg runs the distribution registry (the reference registry
// implementation, with no referrers API) on a loopback port for integration
// tests, installing the pinned version when it is missing.
package distreg
