package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
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

// TestPackagesFollowTheDataFlow: docs/architecture.md lists every package
// in the order data flows through them, and each imports only packages
// listed before it (internal/ helpers aside), so the map a new engineer
// reads first stays true.
func TestPackagesFollowTheDataFlow(t *testing.T) {
	const module = "github.com/dejavu-project/dejavu/"
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	rank := map[string]int{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z/]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		rank[m[1]] = len(rank)
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		me, ok := rank[pkg]
		if !ok {
			t.Errorf("package %s is not in docs/architecture.md's package map", pkg)
			continue
		}
		for _, imp := range f[1:] {
			imp, ours := strings.CutPrefix(imp, module)
			if !ours || strings.HasPrefix(imp, "internal/") {
				continue
			}
			if rank[imp] >= me {
				t.Errorf("%s imports %s, which the package map lists after it", pkg, imp)
			}
		}
	}
}
