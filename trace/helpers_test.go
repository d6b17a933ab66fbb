package trace

import "github.com/dejavu-project/dejavu/backstore/overlaybd"

// uncompressedBlobs stands in for opened uncompressed, unwrapped layers:
// blob coordinates then equal layer-file coordinates.
func uncompressedBlobs(n int, size int64) []*overlaybd.Blob {
	var out []*overlaybd.Blob
	for i := 0; i < n; i++ {
		out = append(out, &overlaybd.Blob{Size: size, PayloadSize: size})
	}
	return out
}
