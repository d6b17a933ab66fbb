package main

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

// registryFlags are the flags every image command shares for reaching
// registries and choosing an image out of a multi-platform index.
type registryFlags struct {
	insecure bool
	platform string
}

func (f *registryFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.insecure, "insecure", false,
		"allow plain HTTP to any registry (always allowed on localhost, loopback and private addresses)")
	fs.StringVar(&f.platform, "platform", "",
		"platform to take from a multi-platform image, as os/arch[/variant] (default linux/"+imageref.DefaultPlatform().Architecture+")")
}

// platformSet reports whether --platform was given.
func (f *registryFlags) platformSet() bool { return f.platform != "" }

// options turns the flags into options for the imageref package.
func (f *registryFlags) options() ([]imageref.Option, error) {
	opts := []imageref.Option{imageref.WithInsecure(f.insecure)}
	if f.platformSet() {
		p, err := v1.ParsePlatform(f.platform)
		if err != nil {
			return nil, fmt.Errorf("--platform %q: %w", f.platform, err)
		}
		if p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("--platform %q: want os/arch[/variant], such as linux/arm64", f.platform)
		}
		opts = append(opts, imageref.WithPlatform(*p))
	}
	return opts, nil
}
