package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteFiles writes the results as JSON at path and the HTML report beside
// it (path with the extension .html, returned). Both are rendered before
// either is written, so that a rendering error leaves no half of the pair.
func WriteFiles(path string, r *Results) (htmlPath string, err error) {
	var j, h bytes.Buffer
	if err := WriteJSON(&j, r); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	if err := HTML(&h, r); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	htmlPath = strings.TrimSuffix(path, filepath.Ext(path)) + ".html"
	if err := os.WriteFile(path, j.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	if err := os.WriteFile(htmlPath, h.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	return htmlPath, nil
}
