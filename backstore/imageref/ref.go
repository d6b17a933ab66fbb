package imageref

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Kind says which of the accepted forms a Ref has.
type Kind int

const (
	// KindRegistry is an image in a registry: HOST/REPO[:TAG|@DIGEST].
	KindRegistry Kind = iota + 1
	// KindLayout is an entry of an OCI image layout: oci:DIR[:TAG].
	KindLayout
	// KindFiles is a list of local layer blob files: file:A,B.
	KindFiles
)

func (k Kind) String() string {
	switch k {
	case KindRegistry:
		return "registry"
	case KindLayout:
		return "oci layout"
	case KindFiles:
		return "layer files"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

const (
	layoutPrefix = "oci:"
	filesPrefix  = "file:"
)

// Ref is a parsed image reference. Only the fields of its Kind are set.
type Ref struct {
	Kind Kind

	// Name is the registry reference (KindRegistry).
	Name name.Reference

	// Dir is the layout directory and Tag the ref.name annotation that
	// selects an entry of its index.json, empty for "the only entry"
	// (KindLayout).
	Dir, Tag string

	// Files are the layer blob files, bottom layer first (KindFiles).
	Files []string
}

// forms is quoted in parse errors so that a user who typed something else
// learns what is accepted.
const forms = "REGISTRY/REPO[:TAG|@DIGEST], oci:DIR[:TAG] or file:LAYER[,LAYER...]"

// Parse parses s in one of the forms described in the package comment.
func Parse(s string) (Ref, error) {
	r, err := parse(s)
	if err != nil {
		return Ref{}, fmt.Errorf("imageref: parse %q: %w", s, err)
	}
	return r, nil
}

func parse(s string) (Ref, error) {
	switch {
	case s == "":
		return Ref{}, fmt.Errorf("empty reference; want %s", forms)
	case strings.HasPrefix(s, layoutPrefix):
		return parseLayout(strings.TrimPrefix(s, layoutPrefix))
	case strings.HasPrefix(s, filesPrefix):
		return parseFiles(strings.TrimPrefix(s, filesPrefix))
	case strings.Contains(s, "://"):
		// docker://, oci-archive:// and friends belong to other tools; say
		// so instead of letting the registry parser produce a puzzling error.
		return Ref{}, fmt.Errorf("transport prefixes are not supported; want %s", forms)
	}
	return parseRegistry(s)
}

// parseLayout splits DIR[:TAG] at the first colon, as skopeo's oci:
// transport does: a directory name cannot hold a colon, but a tag may hold
// anything a ref.name annotation may, slashes included.
func parseLayout(rest string) (Ref, error) {
	dir, tag, hasTag := strings.Cut(rest, ":")
	if dir == "" {
		return Ref{}, errors.New("empty layout directory in oci:DIR[:TAG]")
	}
	if hasTag {
		if tag == "" {
			return Ref{}, errors.New("empty tag after the layout directory (drop the trailing ':')")
		}
		if strings.ContainsFunc(tag, isSpaceOrControl) {
			return Ref{}, fmt.Errorf("tag %q contains white space or control characters", tag)
		}
	}
	return Ref{Kind: KindLayout, Dir: dir, Tag: tag}, nil
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}

func parseFiles(rest string) (Ref, error) {
	if rest == "" {
		return Ref{}, errors.New("no files in file:LAYER[,LAYER...]")
	}
	files := strings.Split(rest, ",")
	for i, f := range files {
		if f == "" {
			return Ref{}, fmt.Errorf("empty file name at position %d of file:LAYER[,LAYER...]", i+1)
		}
	}
	return Ref{Kind: KindFiles, Files: files}, nil
}

func parseRegistry(s string) (Ref, error) {
	ref, err := parseName(s)
	if err != nil {
		return Ref{}, fmt.Errorf("not a registry reference (want %s): %w", forms, err)
	}
	if isLoopback(ref.Context().RegistryStr()) {
		if ref, err = parseName(s, name.Insecure); err != nil {
			return Ref{}, err
		}
	}
	return Ref{Kind: KindRegistry, Name: ref}, nil
}

// parseName parses a tag or a digest reference. It picks the parser itself
// because name.ParseReference hides why both failed.
func parseName(s string, opts ...name.Option) (name.Reference, error) {
	if strings.Contains(s, "@") {
		return name.NewDigest(s, opts...)
	}
	return name.NewTag(s, opts...)
}

// isLoopback reports whether a registry host[:port] is this machine, where
// plain HTTP is always acceptable.
func isLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String returns the reference in the syntax Parse accepts.
func (r Ref) String() string {
	switch r.Kind {
	case KindRegistry:
		if r.Name == nil {
			return ""
		}
		return r.Name.String()
	case KindLayout:
		if r.Tag == "" {
			return layoutPrefix + r.Dir
		}
		return layoutPrefix + r.Dir + ":" + r.Tag
	case KindFiles:
		return filesPrefix + strings.Join(r.Files, ",")
	default:
		return ""
	}
}

// check rejects a Ref that cannot be loaded or written as an image.
func (r Ref) check() error {
	switch r.Kind {
	case KindRegistry:
		if r.Name == nil {
			return errors.New("imageref: registry reference without a name")
		}
	case KindLayout:
		if r.Dir == "" {
			return errors.New("imageref: oci layout reference without a directory")
		}
	case KindFiles:
		return fmt.Errorf("imageref: %s: local layer files are not an image; use a registry reference or oci:DIR[:TAG] here", r)
	default:
		return errors.New("imageref: empty reference")
	}
	return nil
}
