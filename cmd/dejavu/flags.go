package main

import (
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

// registryFlags are the flags every image command shares for reaching
// registries and choosing an image out of a multi-platform index.
type registryFlags struct {
	insecure bool
	platform string
	timeout  time.Duration
}

func (f *registryFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.insecure, "insecure", false,
		"allow plain HTTP to any registry (always allowed on localhost, loopback and private addresses)")
	fs.DurationVar(&f.timeout, "request-timeout", imageref.DefaultRequestTimeout,
		"give up on a registry request that has not started to answer within this (0: wait for ever)")
	fs.StringVar(&f.platform, "platform", "",
		"platform to take from a multi-platform image, as os/arch[/variant] (default linux/"+imageref.DefaultPlatform().Architecture+")")
}

// platformSet reports whether --platform was given.
func (f *registryFlags) platformSet() bool { return f.platform != "" }

// options turns the flags into options for the imageref package.
func (f *registryFlags) options() ([]imageref.Option, error) {
	if f.timeout < 0 {
		return nil, fmt.Errorf("--request-timeout %s: want 0 or more", f.timeout)
	}
	opts := []imageref.Option{imageref.WithInsecure(f.insecure), imageref.WithRequestTimeout(f.timeout)}
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

// parseBandwidth reads 100Mbit, 1Gbit, 12MiB (per second) or plain bytes.
func parseBandwidth(s string) (int64, error) {
	l := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(s, "/s"), "ps"))
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e9 / 8}, {"mbit", 1e6 / 8}, {"kbit", 1e3 / 8}} {
		if strings.HasSuffix(l, u.suffix) {
			var v float64
			if _, err := fmt.Sscan(strings.TrimSuffix(l, u.suffix), &v); err != nil || v < 0 {
				return 0, fmt.Errorf("--bandwidth %q: bad number", s)
			}
			return int64(v * u.mult), nil
		}
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, fmt.Errorf("--bandwidth %q: want e.g. 100Mbit or 12MiB", s)
	}
	return n, nil
}
