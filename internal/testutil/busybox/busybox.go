package busybox

import (
	"crypto/md5"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// ReadData is the image's command: it reads every data file.
var ReadData = []string{"/bin/sh", "-c", "cat /data/*/* > /dev/null"}

// Tree makes the root file system in a temporary directory of the test and
// returns it. It skips (or fails when strict) without a static
// /bin/busybox.
func Tree(t testing.TB) string {
	t.Helper()
	f, err := elf.Open("/bin/busybox")
	if err != nil {
		testenv.Skip(t, "test needs a static busybox (Debian package busybox-static)")
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			testenv.Skip(t, "test needs a static busybox; /bin/busybox is dynamic")
		}
	}
	f.Close()
	root := t.TempDir()
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755))
	for _, a := range []string{"sh", "cat", "find"} {
		must(t, os.Symlink("busybox", filepath.Join(root, "bin", a)))
	}
	data := make([]byte, 64<<10)
	for i := 0; i < 120; i++ {
		for j := range data {
			data[j] = byte(i*31 + j*7)
		}
		dir := filepath.Join(root, "data", fmt.Sprint(i%6))
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), data[:(i%16+1)*4096], 0o644))
	}
	return root
}

// Build builds tree into a one-layer overlaybd image with the runtime
// config cfg (as `dejavu image build` does, with its default layer options)
// and writes it to the registry reference ref.
func Build(t testing.TB, tree, ref string, cfg v1.Config) {
	t.Helper()
	testenv.RequireCommands(t, "mke2fs")
	dst, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	built, err := overlaybd.Build(t.Context(), tree, overlaybd.WithConfig(cfg))
	if err != nil {
		t.Fatalf("build %s: %v", tree, err)
	}
	defer built.Close()
	if err := imageref.WriteImage(t.Context(), dst, built.Image); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// Image builds the image, whose command is ReadData, into a fresh test
// registry; it returns the registry's address, the image's tree and its
// reference. It skips (or fails when strict) when the machine cannot mount
// images (root, loop devices, FUSE, mke2fs).
func Image(t testing.TB) (addr, tree, ref string) {
	t.Helper()
	testenv.RequireLoop(t)
	testenv.RequireCommands(t, "mke2fs")
	testenv.RequireFUSE(t)
	reg := testreg.Start(t)
	tree = Tree(t)
	ref = reg.Ref("bb:v1")
	Build(t, tree, ref, v1.Config{Cmd: ReadData})
	return reg.Addr, tree, ref
}

// MD5Listing is what `md5sum /data/*/*` prints for the tree.
func MD5Listing(t testing.TB, tree string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(tree, "data", "*", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no data files in %s: %v", tree, err)
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(tree, f)
		fmt.Fprintf(&b, "%x  /%s\n", md5.Sum(data), rel)
	}
	return b.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
