package snapshotter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/dejavu-project/dejavu/internal/safefile"
	"github.com/dejavu-project/dejavu/trace"
)

// Config is the snapshotter's config file. Kubernetes gives a snapshotter
// no pod annotations (CRI passes none to snapshot labels), so what a
// container's labels would choose is chosen here by image instead:
//
//	[[images]]
//	match = "registry.example.com/shop/*"
//	workload = "web"
//
//	[[images]]
//	match = "registry.example.com/batch/*"
//	trace = "none"
//
// The first rule whose pattern matches the image's repository applies.
// Labels on a container's snapshot still win, field by field.
type Config struct {
	Images []ImageRule `toml:"images"`
}

// ImageRule chooses the prefetch of containers whose image's repository
// matches.
type ImageRule struct {
	// Match is a path.Match pattern over the repository: the registry
	// host and path, without tag or digest ("registry.example.com/shop/*";
	// "*" does not cross a "/").
	Match string `toml:"match"`
	// Trace is auto (the attached trace; the default), none, or
	// sha256:DIGEST of an attached trace artifact.
	Trace string `toml:"trace"`
	// Workload picks among the attached traces (with auto).
	Workload string `toml:"workload"`
}

// maxConfig bounds the config file: rules, not data.
const maxConfig = 1 << 20

// LoadConfig reads and checks a config file. Unknown keys are refused, so
// that a misspelt one is not silently ignored.
func LoadConfig(file string) (*Config, error) {
	f, err := safefile.Open(file)
	if err != nil {
		return nil, fmt.Errorf("snapshotter config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("snapshotter config %s: %w", file, err)
	}
	if len(b) > maxConfig {
		return nil, fmt.Errorf("snapshotter config %s: larger than %d bytes", file, maxConfig)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("snapshotter config %s: %w", file, err)
	}
	return c, nil
}

// ParseConfig parses and checks a config file's contents.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return nil, fmt.Errorf("unknown key: %s", strings.TrimSpace(strict.String()))
		}
		return nil, err
	}
	for i, r := range c.Images {
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("images[%d]: %w", i, err)
		}
	}
	return &c, nil
}

func (r ImageRule) check() error {
	if r.Match == "" {
		return errors.New("no match pattern")
	}
	if _, err := path.Match(r.Match, ""); err != nil {
		return fmt.Errorf("match %q: %w", r.Match, err)
	}
	if r.Trace != "" {
		src, err := trace.ParseSource(r.Trace)
		if err != nil || src.Kind == trace.SourceFile {
			return fmt.Errorf("trace %q: want auto, none or sha256:DIGEST of an attached trace", r.Trace)
		}
	}
	if r.Workload != "" {
		if err := trace.ValidWorkload(r.Workload); err != nil {
			return fmt.Errorf("workload %q: %w", r.Workload, err)
		}
	}
	return nil
}

// rule returns the first rule for the image (repository@digest), if any.
func (c *Config) rule(image string) (ImageRule, bool) {
	if c == nil {
		return ImageRule{}, false
	}
	repo, _, _ := strings.Cut(image, "@")
	for _, r := range c.Images {
		if ok, _ := path.Match(r.Match, repo); ok {
			return r, true
		}
	}
	return ImageRule{}, false
}

// choose applies the image's rule to what the container's labels left
// unchosen.
func (c *Config) choose(image string, labels map[string]string, ch choice) choice {
	r, ok := c.rule(image)
	if !ok {
		return ch
	}
	if _, set := labels[LabelTrace]; !set && r.Trace != "" {
		ch.trace, _ = trace.ParseSource(r.Trace) // checked when loaded
	}
	if _, set := labels[LabelWorkload]; !set && r.Workload != "" {
		ch.workload = r.Workload
	}
	return ch
}
