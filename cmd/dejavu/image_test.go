package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// dejavu runs the CLI in-process and returns what it printed.
func dejavu(t testing.TB, args ...string) (string, string) {
	t.Helper()
	stdout, stderr, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("dejavu %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

// runCLI runs the CLI in-process and returns what it wrote to each stream.
func runCLI(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&o)
	root.SetErr(&e)
	err = root.ExecuteContext(t.Context())
	return o.String(), e.String(), err
}

// dejavuErr runs the CLI and expects it to fail.
func dejavuErr(t *testing.T, args ...string) error {
	t.Helper()
	_, _, err := runCLI(t, args...)
	if err == nil {
		t.Fatalf("dejavu %s succeeded, want an error", strings.Join(args, " "))
	}
	return err
}

// TestHelloWorldThroughRegistry: the real converted image goes into a
// registry unchanged, inspect reports its structure, and the raw device
// holds a /hello that runs.
func TestHelloWorldThroughRegistry(t *testing.T) {
	testenv.RequireCommands(t, "debugfs")
	layout := filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout")
	reg := testreg.Start(t).Addr
	dst := reg + "/hello:overlaybd"
	out, _ := dejavu(t, "image", "copy", "oci:"+layout+":amd64-converted", dst)
	if !strings.Contains(out, "sha256:42caa56a19e082b872d43f645bb392e25c9e78bce429755bd709fac598265f88") {
		t.Fatalf("copy printed %q, want the unchanged manifest digest", out)
	}
	out, _ = dejavu(t, "image", "inspect", dst, "-o", "json")
	var rep backstore.ImageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect json: %v\n%s", err, out)
	}
	if len(rep.Layers) != 1 || rep.Layers[0].Layer == nil {
		t.Fatalf("inspect: %+v", rep)
	}
	l := rep.Layers[0].Layer
	if l.Mappings != 515 || l.Compression != "lz4" || l.BlockSize != 4096 || l.VirtualSize != 64<<30 || !l.Tar || l.BlobSize != 642560 {
		t.Fatalf("inspect: %+v", l)
	}
	table, _ := dejavu(t, "image", "inspect", dst)
	for _, want := range []string{"515", "lz4, 4 KiB blocks", "64 GiB", "642560"} {
		if !strings.Contains(table, want) {
			t.Errorf("inspect table lacks %q:\n%s", want, table)
		}
	}
	raw := filepath.Join(t.TempDir(), "hello.raw")
	dejavu(t, "image", "raw", dst, raw)
	runHello(t, raw)
	// raw refuses to overwrite, and says how to.
	if err := dejavuErr(t, "image", "raw", dst, raw); !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrite: %v", err)
	}
}

// TestBuildInspectRawCLI: image build → registry → inspect → raw → fsck and
// a loop mount that holds the source tree; then convert of the built image's
// layout copy works too, and bad options are refused before any work.
func TestBuildInspectRawCLI(t *testing.T) {
	testenv.RequireCommands(t, "mke2fs", "e2fsck")
	testenv.RequireLoop(t)
	src := t.TempDir()
	treetest.Generate(t, src, treetest.Spec{Files: 200, MaxSmall: 20 << 10, Seed: 5})
	reg := testreg.Start(t).Addr
	dst := reg + "/built:v1"
	dejavu(t, "image", "build", src, dst, "--compression", "zstd", "--block-size", "16KiB", "--cmd", "/bin/true")
	out, _ := dejavu(t, "image", "inspect", dst, "-o", "json")
	var rep backstore.ImageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if l := rep.Layers[0].Layer; l == nil || l.Compression != "zstd" || l.BlockSize != 16384 || rep.Device == nil {
		t.Fatalf("inspect: %s", out)
	}
	raw := filepath.Join(t.TempDir(), "built.raw")
	dejavu(t, "image", "raw", dst, raw)
	if out, err := exec.Command(testenv.LookPath("e2fsck"), "-fn", raw).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	treetest.Compare(t, src, testenv.MountExt4(t, raw))

	if err := dejavuErr(t, "image", "build", src, reg+"/x:y", "--block-size", "64KiB"); !strings.Contains(err.Error(), "64 KiB") {
		t.Fatalf("64 KiB blocks: %v", err)
	}
	if err := dejavuErr(t, "image", "build", src, "file:a"); !strings.Contains(err.Error(), "registry or an OCI layout") {
		t.Fatalf("file: dest: %v", err)
	}
}

// TestConvertHelloWorld converts the ordinary Docker hello-world image (gzip
// layers) into an overlaybd image in a registry and runs its /hello.
func TestConvertHelloWorld(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommands(t, "mke2fs", "debugfs")
	layout := filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout")
	reg := testreg.Start(t).Addr
	dst := reg + "/hello:converted"
	dejavu(t, "image", "convert", "oci:"+layout+":amd64", dst)
	out, _ := dejavu(t, "image", "inspect", dst, "-o", "json")
	var rep backstore.ImageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 1 || rep.Layers[0].Layer == nil || rep.Layers[0].Layer.Compression != "lz4" {
		t.Fatalf("converted image: %s", out)
	}
	raw := filepath.Join(t.TempDir(), "converted.raw")
	dejavu(t, "image", "raw", dst, raw)
	runHello(t, raw)
}

// runHello dumps /hello out of a raw ext4 image with debugfs and runs it.
func runHello(t *testing.T, raw string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hello")
	if out, err := exec.Command(testenv.LookPath("debugfs"), "-R", "dump /hello "+bin, raw).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	os.Chmod(bin, 0o755)
	got, err := exec.Command(bin).CombinedOutput()
	if err != nil || !strings.Contains(string(got), "Hello from Docker!") {
		t.Fatalf("/hello: %v\n%s", err, got)
	}
}
