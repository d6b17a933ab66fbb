package overlaybd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

func tarBytes(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tReg {
			h.Size = 5000
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tReg {
			tw.Write(randBytes(3, 5000))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestConvertLayersBadInput: each broken image fails with an error that
// names the layer (index and digest) and, where there is one, the entry,
// and leaves nothing behind.
func TestConvertLayersBadInput(t *testing.T) {
	testenv.RequireCommands(t, "mke2fs", "debugfs")
	good := hdrLayer(t, map[string][]byte{"etc/passwd": []byte("root\n")}, reg("etc/passwd", 0o644))
	plain := tarBytes(t, reg("a/file", 0), reg("a/other", 0))
	gz := gzipBytes(plain)
	corrupt := bytes.Clone(gz)
	for i := len(corrupt) / 3; i < len(corrupt)/3+64; i++ {
		corrupt[i] ^= 0x5a
	}
	for _, tc := range []struct {
		name  string
		layer v1.Layer
		mt    types.MediaType
		want  []string
	}{
		{"truncated gzip", gzipLayer(t, gz[:len(gz)/2], plain), "", []string{`entry "a/file"`, "unexpected EOF"}},
		{"corrupt gzip", gzipLayer(t, corrupt, plain), "", []string{`after entry "a/file"`, "invalid tar header"}},
		{"unsupported media type", static.NewLayer(plain, "application/vnd.example.layer.v1+squashfs"), "",
			[]string{"unsupported media type", "squashfs"}},
		{"whiteout escaping the root", static.NewLayer(tarBytes(t, &tar.Header{Name: "a/../../.wh.etc", Typeflag: tReg}), types.OCIUncompressedLayer), "",
			[]string{`entry "a/../../.wh.etc"`, "escapes"}},
		{"absolute hard link", static.NewLayer(tarBytes(t, &tar.Header{Name: "x", Typeflag: tHard, Linkname: "/etc/passwd"}), types.OCIUncompressedLayer), "",
			[]string{`entry "x"`, "absolute"}},
		{"hard link climbing out", static.NewLayer(tarBytes(t, &tar.Header{Name: "x", Typeflag: tHard, Linkname: "etc/../../passwd"}), types.OCIUncompressedLayer), "",
			[]string{`entry "x"`, "escapes"}},
		{"name debugfs cannot carry", static.NewLayer(tarBytes(t, reg("a\"b", 0)), types.OCIUncompressedLayer), "",
			[]string{`entry "a\"b"`, "double quotes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			img, err := mutate.AppendLayers(empty.Image, good, tc.layer)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := tc.layer.Digest()
			checkBad(t, img, work, append(tc.want, fmt.Sprintf("layer 1 (%s)", d)))
		})
	}
	t.Run("diff ID not the config's", func(t *testing.T) {
		work := t.TempDir()
		img, err := mutate.AppendLayers(empty.Image, good, static.NewLayer(plain, types.OCIUncompressedLayer))
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.RootFS.DiffIDs[1] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := static.NewLayer(plain, types.OCIUncompressedLayer).Digest()
		checkBad(t, img, work, []string{fmt.Sprintf("layer 1 (%s)", d), "the config says sha256:abab"})
	})
}

// brokenLayer is a gzip layer whose bytes are damaged but whose diff ID is
// the one of the intact content, as the config of a damaged download says.
type brokenLayer struct {
	comp   []byte
	diffID v1.Hash
}

func (l brokenLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(l.comp))
	return h, err
}
func (l brokenLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l brokenLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.comp)), nil
}
func (l brokenLayer) Uncompressed() (io.ReadCloser, error) {
	zr, err := gzip.NewReader(bytes.NewReader(l.comp))
	if err != nil {
		return nil, err
	}
	return zr, nil
}
func (l brokenLayer) Size() (int64, error)                { return int64(len(l.comp)), nil }
func (l brokenLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }

func gzipLayer(t *testing.T, damaged, intact []byte) v1.Layer {
	t.Helper()
	d, err := static.NewLayer(intact, types.DockerUncompressedLayer).Digest()
	if err != nil {
		t.Fatal(err)
	}
	return brokenLayer{damaged, d}
}

func checkBad(t *testing.T, img v1.Image, work string, want []string) {
	t.Helper()
	built, err := Convert(context.Background(), img, WithWorkDir(work))
	if err == nil {
		built.Close()
		t.Fatal("converted")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	left, _ := os.ReadDir(work)
	if len(left) != 0 {
		t.Errorf("left behind in the work directory: %v", left)
	}
}

// FuzzScripter feeds arbitrary tar streams to the request writer over a
// tree that already holds files: it must fail or succeed, never panic, and
// never write a request line that debugfs would split differently.
func FuzzScripter(f *testing.F) {
	f.Add(tarSeed(f, &tar.Header{Name: "etc/.wh.passwd", Typeflag: tReg}, &tar.Header{Name: "x", Typeflag: tHard, Linkname: "etc/passwd"}))
	f.Add(tarSeed(f, &tar.Header{Name: "l", Typeflag: tSym, Linkname: "../../etc"}, &tar.Header{Name: "l/f", Typeflag: tReg}))
	f.Add(tarSeed(f, &tar.Header{Name: "etc/.wh..wh..opq", Typeflag: tReg}, &tar.Header{Name: "etc", Typeflag: tReg}))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree := newFSTree()
		var script bytes.Buffer
		setup, err := newScripter(&script, tree, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []*tar.Header{{Name: "etc/", Typeflag: tDir}, {Name: "etc/passwd", Typeflag: tReg}, {Name: "bin", Typeflag: tSym, Linkname: "usr/bin"}} {
			if err := setup.entry(h, strings.NewReader("")); err != nil {
				t.Fatal(err)
			}
		}
		sc, err := newScripter(&script, tree, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(bytes.NewReader(data))
		for range 64 {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if sc.entry(h, io.LimitReader(tr, 1<<20)) != nil {
				break
			}
		}
		sc.finish()
		for _, line := range strings.Split(script.String(), "\n") {
			if strings.Count(line, `"`)%2 != 0 {
				t.Fatalf("unbalanced quotes in request %q", line)
			}
		}
	})
}

func tarSeed(f *testing.F, hdrs ...*tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
	}
	tw.Close()
	return buf.Bytes()
}
