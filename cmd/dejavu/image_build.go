package main

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

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
	fl.StringVar(&f.size, "size", "auto", "file system and virtual device size (e.g. 2GiB, 64GiB); auto fits the content")
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
	opts := []overlaybd.BuildOption{overlaybd.WithBlobOptions(blob...), overlaybd.WithWorkDir(f.workDir)}
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

func newImageBuildCmd() *cobra.Command {
	var rf registryFlags
	var lf layerFlags
	var entrypoint, cmdArgs, env []string
	var workingDir, user string
	cmd := &cobra.Command{
		Use:   "build DIR DEST",
		Short: "Build a directory tree into a one-layer overlaybd image",
		Long: `Build makes an ext4 file system of DIR (mke2fs -t ext4 -b 4096 -d DIR), stores
it as one sealed overlaybd layer (LSMT, ZFile-compressed, tar-wrapped, as the
overlaybd tools write it) and writes the image, with the overlaybd layer
annotations and an OCI config, to DEST: a registry reference or oci:DIR[:TAG].

Run it as root to keep the owners of DIR's files.`,
		Example: `  dejavu image build ./rootfs localhost:5000/app:latest --cmd /app/server
  dejavu image build ./rootfs oci:./layout:app --compression zstd --block-size 32KiB
  dejavu image build ./rootfs localhost:5000/app:big --size 64GiB --env LANG=C.UTF-8`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest, err := imageref.Parse(args[1])
			if err != nil {
				return err
			}
			if dest.Kind == imageref.KindFiles {
				return fmt.Errorf("DEST %s: write to a registry or an OCI layout", args[1])
			}
			opts, err := lf.options()
			if err != nil {
				return err
			}
			opts = append(opts, overlaybd.WithConfig(v1.Config{
				Entrypoint: entrypoint, Cmd: cmdArgs, Env: env, WorkingDir: workingDir, User: user,
			}))
			if rf.platformSet() {
				p, err := v1.ParsePlatform(rf.platform)
				if err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
				opts = append(opts, overlaybd.WithPlatform(*p))
			}
			built, err := overlaybd.Build(cmd.Context(), args[0], opts...)
			if err != nil {
				return err
			}
			defer built.Close()
			return writeBuilt(cmd, built, dest, rf)
		},
	}
	rf.register(cmd.Flags())
	lf.register(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&entrypoint, "entrypoint", nil, "entrypoint, one flag per argument")
	fl.StringArrayVar(&cmdArgs, "cmd", nil, "command, one flag per argument")
	fl.StringArrayVar(&env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	fl.StringVar(&workingDir, "workdir", "", "working directory of the process")
	fl.StringVar(&user, "user", "", "user (and group) the process runs as")
	return cmd
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
