package overlaybd

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// sourceMediaTypes are the layer media types Convert reads: tar, gzip or
// zstd, Docker and OCI, distributable or not.
var sourceMediaTypes = map[types.MediaType]bool{
	types.DockerLayer:                    true,
	types.DockerUncompressedLayer:        true,
	types.OCILayer:                       true,
	types.OCILayerZStd:                   true,
	types.OCIUncompressedLayer:           true,
	types.OCIRestrictedLayer:             true,
	types.OCIUncompressedRestrictedLayer: true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": true,
}

// chainIDs returns the OCI chain ID of every layer: the first layer's diff
// ID, then sha256 of "parent-chain-ID diff-ID". It names a layer together
// with everything below it, which is what a converted layer depends on.
func chainIDs(diffIDs []v1.Hash) []v1.Hash {
	out := make([]v1.Hash, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1].String() + " " + d.String()))
		out[i] = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	}
	return out
}

// chainUUID derives a layer UUID from a chain ID as overlaybd's convertor
// does: the first 32 hex digits, grouped 8-4-4-4-12. overlaybd keeps UUIDs
// in upper case.
func chainUUID(chain v1.Hash) string {
	h := strings.ToUpper(chain.Hex)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// diffIDs reads the image's diff IDs and checks there is one per layer.
func diffIDs(cf *v1.ConfigFile, layers int) ([]v1.Hash, error) {
	ids := cf.RootFS.DiffIDs
	if len(ids) != layers {
		return nil, fmt.Errorf("convert: the config lists %d diff IDs for %d layers", len(ids), layers)
	}
	for i, d := range ids {
		if d.Algorithm != "sha256" || len(d.Hex) != 64 {
			return nil, fmt.Errorf("convert: layer %d: diff ID %q is not a sha256 digest", i, d)
		}
	}
	return ids, nil
}

// sourceLayer is an opened source layer: its uncompressed tar, hashed as
// it is read so that the diff ID can be checked once it is consumed.
type sourceLayer struct {
	rc   io.ReadCloser
	h    hash.Hash
	want v1.Hash
	tr   *tar.Reader
}

func openSourceLayer(l v1.Layer, want v1.Hash) (*sourceLayer, error) {
	mt, err := l.MediaType()
	if err != nil {
		return nil, fmt.Errorf("media type: %w", err)
	}
	if !sourceMediaTypes[mt] {
		return nil, fmt.Errorf("unsupported media type %q (want a tar, tar+gzip or tar+zstd layer)", mt)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	s := &sourceLayer{rc: rc, h: sha256.New(), want: want}
	s.tr = tar.NewReader(io.TeeReader(rc, s.h))
	return s, nil
}

// next returns the next tar entry, or io.EOF after the last one.
func (s *sourceLayer) next() (*tar.Header, error) {
	hdr, err := s.tr.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read tar: %w", err)
	}
	return hdr, err
}

// verify reads what follows the tar's end marker, so that the whole stream
// is hashed (and a registry layer's digest checked), and compares the diff ID.
func (s *sourceLayer) verify() error {
	if _, err := io.Copy(s.h, s.rc); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s.h.Sum(nil))}
	if got != s.want {
		return fmt.Errorf("content has diff ID %s, the config says %s", got, s.want)
	}
	return nil
}

func (s *sourceLayer) Close() error { return s.rc.Close() }
