package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dejavu-project/dejavu/internal/safefile"
)

// WriteFiles writes the results as JSON at path and the HTML report beside
// it (path with the extension .html, returned). Both are rendered, and
// both targets checked, before either is written, so that a rendering
// error or a refused target leaves no half of the pair. Each file goes
// through a temporary file and a rename; an existing regular file is
// replaced only with replace, anything else (a device node, a symbolic
// link, a directory, a FIFO) never.
func WriteFiles(path string, r *Results, replace bool) (htmlPath string, err error) {
	var j, h bytes.Buffer
	if err := WriteJSON(&j, r); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	if err := HTML(&h, r); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	htmlPath, err = CheckFiles(path, replace)
	if err != nil {
		return "", err
	}
	opt := safefile.WithReplace(replace)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	if err := safefile.WriteFile(path, j.Bytes(), opt); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	if err := safefile.WriteFile(htmlPath, h.Bytes(), opt); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	return htmlPath, nil
}

// CheckFiles reports whether WriteFiles(path, r, replace) may write its two
// files, without writing, and returns the HTML report's path. A benchmark
// calls it before its first start, so that a bad output path fails at once.
func CheckFiles(path string, replace bool) (htmlPath string, err error) {
	htmlPath = strings.TrimSuffix(path, filepath.Ext(path)) + ".html"
	if htmlPath == path {
		return "", fmt.Errorf("reports: %s: the results file must not end in .html, the HTML report goes there", path)
	}
	for _, p := range []string{path, htmlPath} {
		if err := safefile.Check(p, safefile.WithReplace(replace)); err != nil {
			return "", fmt.Errorf("reports: %w", err)
		}
	}
	return htmlPath, nil
}
