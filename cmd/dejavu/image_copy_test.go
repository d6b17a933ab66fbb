package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

const (
	convertedManifest = "sha256:42caa56a19e082b872d43f645bb392e25c9e78bce429755bd709fac598265f88"
	convertedLayer    = "sha256:022231c3f1af70e0cc42f0c3781eabf174cff608210585bf93fc83e16d33672d"
	dockerArm64       = "sha256:efebf0f7aee69450f99deafe11121afa720abed733943e50581a9dc7540689c8"
)

// runImage runs "dejavu image ARGS..." in process and returns its output.
func runImage(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newImageCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestImageCopy(t *testing.T) {
	fixture := filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout")
	host := testreg.Start(t).Addr
	out := filepath.Join(t.TempDir(), "layout")

	steps := [][2]string{
		{"oci:" + fixture + ":amd64-converted", host + "/hello/obd:v1"},
		{host + "/hello/obd:v1", "oci:" + out + ":v1"},
	}
	for _, s := range steps {
		got, err := runImage(t, "copy", s[0], s[1])
		if err != nil {
			t.Fatalf("copy %s %s: %v (output %q)", s[0], s[1], err, got)
		}
		if strings.TrimSpace(got) != convertedManifest {
			t.Fatalf("copy %s %s printed %q, want %s", s[0], s[1], got, convertedManifest)
		}
	}

	r, err := imageref.Parse("oci:" + out + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	d, err := imageref.Descriptor(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest.String() != convertedManifest {
		t.Errorf("layout entry v1 is %s, want %s", d.Digest, convertedManifest)
	}
	hex := strings.TrimPrefix(convertedLayer, "sha256:")
	want, err := os.ReadFile(filepath.Join(fixture, "blobs", "sha256", hex))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "blobs", "sha256", hex))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("layer blob in the new layout differs from the fixture (%d bytes, %v)", len(got), err)
	}
}

func TestImageCopyPlatform(t *testing.T) {
	fixture := filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout")
	out := filepath.Join(t.TempDir(), "layout")
	got, err := runImage(t, "copy", "--platform", "linux/arm64", "oci:"+fixture+":docker-list", "oci:"+out)
	if err != nil {
		t.Fatalf("copy --platform: %v (output %q)", err, got)
	}
	if strings.TrimSpace(got) != dockerArm64 {
		t.Errorf("copy --platform linux/arm64 printed %q, want %s", got, dockerArm64)
	}
	if _, err := os.Stat(filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(dockerArm64, "sha256:"))); err != nil {
		t.Errorf("arm64 manifest not in the new layout: %v", err)
	}
}

func TestImageCopyErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"copy", "oci:" + dir}, "accepts 2 arg(s)"},
		{[]string{"copy", "oci:", "oci:" + dir}, "empty layout directory"},
		{[]string{"copy", "oci:" + dir, "oci:" + dir + ":x"}, "not an OCI image layout"},
		{[]string{"copy", "file:a,b", "oci:" + dir}, "not an image"},
		{[]string{"copy", "--platform", "arm64", "oci:" + dir, "oci:" + dir}, "want os/arch"},
	}
	for _, tt := range tests {
		out, err := runImage(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("dejavu image %s: error %v, want one saying %q (output %q)", strings.Join(tt.args, " "), err, tt.want, out)
		}
	}
}

func TestImageCopyHelp(t *testing.T) {
	out, err := runImage(t, "copy", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Examples:", "dejavu image copy registry.example.com/app:v1-obd oci:", "oci:DIR[:TAG]", "--insecure", "--platform"} {
		if !strings.Contains(out, want) {
			t.Errorf("copy --help lacks %q:\n%s", want, out)
		}
	}
}
