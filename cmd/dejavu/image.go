package main

import "github.com/spf13/cobra"

// imageRefHelp explains the reference forms that every image command takes.
const imageRefHelp = `Images are named in one of these forms:

  REGISTRY/REPO:TAG, REGISTRY/REPO@DIGEST
      an image or index in a registry; plain HTTP is allowed for registries
      on localhost, loopback or private addresses, and for any with --insecure
  oci:DIR[:TAG]
      an entry of an OCI image layout directory; TAG matches the entry's
      org.opencontainers.image.ref.name annotation and may be left out when
      the layout holds a single entry
  file:LAYER[,LAYER...]
      local overlaybd layer blob files, bottom layer first (only where a
      command says so)`

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build, convert, copy and inspect overlaybd images",
		Long:  "Build, convert, copy and inspect overlaybd images.\n\n" + imageRefHelp,
	}
	cmd.AddCommand(imageSubcommands()...)
	return cmd
}

// imageSubcommands is the one list of "dejavu image" subcommands: add new
// ones here.
func imageSubcommands() []*cobra.Command {
	return []*cobra.Command{
		newImageBuildCmd(),
		newImageConvertCmd(),
		newImageCopyCmd(),
		newImageInspectCmd(),
		newImageLayersCmd(),
		newImagePullCmd(),
		newImageRawCmd(),
	}
}
