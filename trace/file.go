package trace

import (
	"fmt"

	"github.com/dejavu-project/dejavu/internal/safefile"
)

// ReadFile reads an encoded trace from a file. Anything but a regular file
// (a FIFO, a device node) is refused without blocking on it: a trace is
// decoded within bounds taken from its encoded size.
func ReadFile(path string) (*Trace, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	t, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	return t, nil
}

// WriteOption configures WriteFile.
type WriteOption func(*writeConfig)

type writeConfig struct{ replace bool }

// WithReplace says whether WriteFile replaces an existing regular file.
// Default: false, an existing file is an error wrapping fs.ErrExist.
func WithReplace(on bool) WriteOption { return func(c *writeConfig) { c.replace = on } }

// WriteFile writes an encoded trace atomically, through a temporary file
// beside path and a rename: a failed write leaves an older file as it was
// and no temporary file. Anything at path that is not a regular file (a
// device node, a symbolic link, a directory, a FIFO) is never replaced.
func WriteFile(path string, t *Trace, opts ...WriteOption) error {
	var c writeConfig
	for _, o := range opts {
		o(&c)
	}
	b, err := Marshal(t)
	if err != nil {
		return err
	}
	if err := safefile.WriteFile(path, b, safefile.WithReplace(c.replace)); err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	return nil
}
