package main

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

func newImageCopyCmd() *cobra.Command {
	var flags registryFlags
	cmd := &cobra.Command{
		Use:   "copy SRC DEST",
		Short: "Copy an image or index between registries and OCI layouts",
		Long: `Copy an image, or a multi-platform index with all its images, from SRC to
DEST. Either may be a registry or an OCI layout. Manifests and blobs are
copied unchanged, so the digest (printed when done) and any signature over it
stay valid; an overlaybd image stays an overlaybd image. With --platform only
that platform's image is taken out of an index and copied.

` + imageRefHelp,
		Example: `  # Pull an overlaybd image from a registry into a local OCI layout
  dejavu image copy registry.example.com/app:v1-obd oci:./app-layout:v1-obd

  # Push it from the layout to another registry
  dejavu image copy oci:./app-layout:v1-obd localhost:5000/app:v1-obd

  # Copy only the linux/arm64 image of a multi-platform image
  dejavu image copy --platform linux/arm64 registry.example.com/app:v1 oci:./arm64`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			digest, err := runImageCopy(cmd, &flags, args[0], args[1])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), digest)
			return err
		},
	}
	flags.register(cmd.Flags())
	return cmd
}

func runImageCopy(cmd *cobra.Command, flags *registryFlags, srcArg, dstArg string) (v1.Hash, error) {
	src, err := imageref.Parse(srcArg)
	if err != nil {
		return v1.Hash{}, err
	}
	dst, err := imageref.Parse(dstArg)
	if err != nil {
		return v1.Hash{}, err
	}
	opts, err := flags.options()
	if err != nil {
		return v1.Hash{}, err
	}
	return imageref.Copy(cmd.Context(), src, dst, append(opts, imageref.WithPlatformOnly(flags.platformSet()))...)
}
