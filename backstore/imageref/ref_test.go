package imageref

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestParse(t *testing.T) {
	const digest = "sha256:42caa56a19e082b872d43f645bb392e25c9e78bce429755bd709fac598265f88"
	tests := []struct {
		in       string
		kind     Kind
		dir, tag string
		files    []string
		registry string // registry host of a KindRegistry result
		scheme   string // URL scheme it is spoken to with
	}{
		{in: "localhost:5000/app:tag", kind: KindRegistry, registry: "localhost:5000", scheme: "http"},
		{in: "127.0.0.1:43127/a/b@" + digest, kind: KindRegistry, registry: "127.0.0.1:43127", scheme: "http"},
		{in: "[::1]:5000/app", kind: KindRegistry, registry: "[::1]:5000", scheme: "http"},
		{in: "registry.example.com/a/b@" + digest, kind: KindRegistry, registry: "registry.example.com", scheme: "https"},
		{in: "registry.example.com:443/a/b:v1", kind: KindRegistry, registry: "registry.example.com:443", scheme: "https"},
		{in: "ubuntu", kind: KindRegistry, registry: "index.docker.io", scheme: "https"},
		{in: "oci:dir", kind: KindLayout, dir: "dir"},
		{in: "oci:/abs/dir:amd64-converted", kind: KindLayout, dir: "/abs/dir", tag: "amd64-converted"},
		{in: "oci:rel/dir:team/app:v1", kind: KindLayout, dir: "rel/dir", tag: "team/app:v1"},
		{in: "file:a.blob", kind: KindFiles, files: []string{"a.blob"}},
		{in: "file:/x/lower.blob,upper.blob", kind: KindFiles, files: []string{"/x/lower.blob", "upper.blob"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Kind != tt.kind {
				t.Fatalf("Kind = %v, want %v", r.Kind, tt.kind)
			}
			if got := r.String(); got != tt.in {
				t.Errorf("String() = %q, want %q", got, tt.in)
			}
			switch tt.kind {
			case KindRegistry:
				reg := r.Name.Context().Registry
				if reg.RegistryStr() != tt.registry || reg.Scheme() != tt.scheme {
					t.Errorf("registry %s over %s, want %s over %s", reg.RegistryStr(), reg.Scheme(), tt.registry, tt.scheme)
				}
			case KindLayout:
				if r.Dir != tt.dir || r.Tag != tt.tag {
					t.Errorf("Dir, Tag = %q, %q; want %q, %q", r.Dir, r.Tag, tt.dir, tt.tag)
				}
			case KindFiles:
				if !slices.Equal(r.Files, tt.files) {
					t.Errorf("Files = %q, want %q", r.Files, tt.files)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty reference"},
		{"oci:", "empty layout directory"},
		{"oci::tag", "empty layout directory"},
		{"oci:dir:", "empty tag"},
		{"oci:dir:a b", "white space"},
		{"file:", "no files"},
		{"file:a,,b", "empty file name at position 2"},
		{"file:a,", "empty file name at position 2"},
		{"docker://ubuntu", "transport prefixes"},
		{"Registry.example.com/UPPER/app:tag", "not a registry reference (want REGISTRY/REPO[:TAG|@DIGEST], oci:DIR[:TAG] or file:LAYER[,LAYER...]): repository can only contain"},
		{"localhost:5000/app:bad tag", "tag can only contain"},
		{"localhost:5000/app@sha256:1234", "digest length"},
		{"localhost:5000/app:", "must specify a tag name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, r)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "imageref: parse ") {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestInsecureOption(t *testing.T) {
	r, err := Parse("registry.example.com/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	ref, _, err := Remote(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if s := ref.Context().Scheme(); s != "https" {
		t.Errorf("without WithInsecure: scheme %s, want https", s)
	}
	ref, _, err = Remote(context.Background(), r, WithInsecure(true))
	if err != nil {
		t.Fatal(err)
	}
	if s := ref.Context().Scheme(); s != "http" {
		t.Errorf("with WithInsecure: scheme %s, want http", s)
	}
	if _, ok := ref.(name.Tag); !ok || ref.String() != r.String() {
		t.Errorf("WithInsecure changed the reference: %v", ref)
	}
}

func TestFilesAreNotImages(t *testing.T) {
	r, err := Parse("file:lower.blob,upper.blob")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Image(ctx, r); err == nil || !strings.Contains(err.Error(), "file:lower.blob,upper.blob: local layer files are not an image") {
		t.Errorf("Image(file:) error = %v", err)
	}
	dst, _ := Parse("oci:" + t.TempDir())
	if _, err := Copy(ctx, r, dst); err == nil || !strings.Contains(err.Error(), "not an image") {
		t.Errorf("Copy(file:) error = %v", err)
	}
	if _, err := Descriptor(ctx, Ref{}); err == nil {
		t.Error("Descriptor(Ref{}) succeeded")
	}
}
