package overlaybd

import (
	"fmt"
	"io"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/backstore/zfile"
)

// BlobOption configures WriteBlob.
type BlobOption func(*blobConfig) error

type blobConfig struct {
	compress  bool
	algo      zfile.Algorithm
	blockSize int
	tar       bool
	layer     []lsmt.LayerOption
}

// WithCompression selects "lz4" (the default), "zstd" or "none".
func WithCompression(name string) BlobOption {
	return func(c *blobConfig) error {
		if name == "none" {
			c.compress = false
			return nil
		}
		a, err := zfile.ParseAlgorithm(name)
		if err != nil {
			return err
		}
		c.compress, c.algo = true, a
		return nil
	}
}

// WithBlockSize sets the ZFile block size (4, 8, 16 or 32 KiB; default 4).
func WithBlockSize(n int) BlobOption {
	return func(c *blobConfig) error {
		if err := zfile.CheckWriteBlockSize(n); err != nil {
			return err
		}
		c.blockSize = n
		return nil
	}
}

// WithTar controls the tar wrapper (on by default, as overlaybd's convertor
// writes layers).
func WithTar(on bool) BlobOption {
	return func(c *blobConfig) error { c.tar = on; return nil }
}

// WithLayerOptions passes options (UUIDs, user tag) to the LSMT writer.
func WithLayerOptions(o ...lsmt.LayerOption) BlobOption {
	return func(c *blobConfig) error { c.layer = append(c.layer, o...); return nil }
}

// newBlobConfig applies opts to the defaults: LZ4, 4 KiB blocks, tar.
func newBlobConfig(opts []BlobOption) (blobConfig, error) {
	cfg := blobConfig{compress: true, algo: zfile.LZ4, blockSize: 4 << 10, tar: true}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// countingWriter counts what it passes on.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteBlob writes a layer blob holding the given extents of src (a raw
// virtual device of virtualSize bytes) to w starting at offset 0, and returns
// the blob's size. The blob is a sealed LSMT layer, ZFile-compressed unless
// WithCompression("none"), in overlaybd's tar wrapper unless WithTar(false).
func WriteBlob(w io.WriterAt, src io.ReaderAt, extents []lsmt.Extent, virtualSize int64, opts ...BlobOption) (int64, error) {
	cfg, err := newBlobConfig(opts)
	if err != nil {
		return 0, err
	}
	base := int64(0)
	if cfg.tar {
		base = tarPayloadOffset
	}
	out := io.NewOffsetWriter(w, base)
	var payload int64
	if cfg.compress {
		zw, err := zfile.NewWriter(out, zfile.WithAlgorithm(cfg.algo), zfile.WithBlockSize(cfg.blockSize))
		if err != nil {
			return 0, err
		}
		if _, err := lsmt.WriteLayer(zw, src, extents, virtualSize, cfg.layer...); err != nil {
			zw.Close()
			return 0, err
		}
		if err := zw.Close(); err != nil {
			return 0, err
		}
		payload = zw.Size()
	} else {
		cw := &countingWriter{w: out}
		if _, err := lsmt.WriteLayer(cw, src, extents, virtualSize, cfg.layer...); err != nil {
			return 0, err
		}
		payload = cw.n
	}
	if !cfg.tar {
		return payload, nil
	}
	if _, err := w.WriteAt(TarHeader(payload), 0); err != nil {
		return 0, fmt.Errorf("write tar header: %w", err)
	}
	tr := TarTrailer(payload)
	if _, err := w.WriteAt(tr, base+payload); err != nil {
		return 0, fmt.Errorf("write tar trailer: %w", err)
	}
	return base + payload + int64(len(tr)), nil
}
