package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

// What "image build" and "image convert" share: how the layer is written and
// how the image is stored and reported.

// layerFlags are the flags that say how a layer blob is written.
type layerFlags struct {
	compression string
	blockSize   string
	size        string
	noTar       bool
	workDir     string
}

func (f *layerFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.compression, "compression", "lz4", "layer compression: lz4, zstd or none")
	fl.StringVar(&f.blockSize, "block-size", "4KiB", "ZFile block size: 4KiB, 8KiB, 16KiB or 32KiB")
	fl.StringVar(&f.size, "size", "auto", "file system and virtual device size (e.g. 2GiB, 64GiB); auto: fit the content (build, convert --flatten) or 64GiB (convert)")
	fl.BoolVar(&f.noTar, "no-tar", false, "store the layer without overlaybd's tar wrapper")
	fl.StringVar(&f.workDir, "tmp-dir", "", "directory for temporary files (default: the system's)")
}

func (f *layerFlags) options() ([]overlaybd.BuildOption, error) {
	bs, err := parseSize(f.blockSize)
	if err != nil {
		return nil, fmt.Errorf("--block-size: %w", err)
	}
	blob := []overlaybd.BlobOption{overlaybd.WithCompression(f.compression), overlaybd.WithTar(!f.noTar)}
	if f.compression != "none" {
		blob = append(blob, overlaybd.WithBlockSize(int(bs)))
	}
	opts := []overlaybd.BuildOption{overlaybd.WithBlobOptions(blob...), overlaybd.WithWorkDir(f.workDir), overlaybd.WithBuildLogger(slog.Default())}
	if f.size != "auto" {
		n, err := parseSize(f.size)
		if err != nil {
			return nil, fmt.Errorf("--size: %w", err)
		}
		if n%4096 != 0 || n < 1<<20 {
			return nil, fmt.Errorf("--size %s: want a multiple of 4 KiB of at least 1 MiB", f.size)
		}
		opts = append(opts, overlaybd.WithSize(n))
	}
	return opts, nil
}

// writeBuilt writes a built image to dest and prints what was written.
func writeBuilt(cmd *cobra.Command, built *overlaybd.Built, dest imageref.Ref, rf registryFlags) error {
	ropts, err := rf.options()
	if err != nil {
		return err
	}
	if err := imageref.WriteImage(cmd.Context(), dest, built.Image, ropts...); err != nil {
		return err
	}
	d, err := built.Image.Digest()
	if err != nil {
		return err
	}
	m, err := built.Image.Manifest()
	if err != nil {
		return err
	}
	var parts []string
	for _, l := range m.Layers {
		parts = append(parts, fmt.Sprintf("layer %s (%s)", l.Digest, humanBytes(l.Size)))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s, %s virtual device\n", dest, strings.Join(parts, ", "), humanBytes(built.VirtualSize))
	fmt.Fprintln(cmd.OutOrStdout(), d)
	return nil
}
