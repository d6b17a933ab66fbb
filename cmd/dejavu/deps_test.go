package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryImportsNoTestHelper: the shipped command links no package of
// internal/testutil (fixtures, skips, the pinned test registry).
func TestBinaryImportsNoTestHelper(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "/internal/testutil/") {
			t.Errorf("dejavu imports the test helper %s", p)
		}
	}
}
