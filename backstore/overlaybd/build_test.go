package overlaybd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// rawFromLayer opens a built layer blob and writes its device as a raw file.
func rawFromLayer(t *testing.T, layerPath string) (string, *Blob) {
	t.Helper()
	return rawFromFiles(t, layerPath), openBlobFile(t, layerPath)
}

func fsck(t *testing.T, raw string) {
	t.Helper()
	out, err := exec.Command(testenv.LookPath("e2fsck"), "-fn", raw).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
}

// TestBuildRoundTrip: a tree of a few thousand files goes through image
// build and comes back identical from a loop mount of the raw device, for
// both compressors and the smallest and largest block sizes.
func TestBuildRoundTrip(t *testing.T) {
	testenv.RequireCommands(t, "mke2fs", "e2fsck")
	testenv.RequireLoop(t)
	src := t.TempDir()
	data := treetest.Generate(t, src, treetest.Spec{Files: 3000, MaxSmall: 64 << 10, Big: 20 << 20, Seed: 1})
	t.Logf("source tree: %d bytes of file data", data)
	for _, tc := range []struct {
		algo string
		bs   int
	}{{"lz4", 4 << 10}, {"lz4", 32 << 10}, {"zstd", 4 << 10}, {"zstd", 32 << 10}} {
		t.Run(tc.algo+"-"+sizeName(tc.bs), func(t *testing.T) {
			built, err := Build(context.Background(), src, WithBlobOptions(WithCompression(tc.algo), WithBlockSize(tc.bs)))
			if err != nil {
				t.Fatal(err)
			}
			defer built.Close()
			raw, b := rawFromLayer(t, built.LayerPath)
			if b.Compression() != tc.algo || b.ZFile.BlockSize() != tc.bs || !b.Tar {
				t.Fatalf("layer: %s, %d-byte blocks, tar %v", b.Compression(), b.ZFile.BlockSize(), b.Tar)
			}
			st := b.Layer.Stats()
			t.Logf("blob %d bytes, device %d bytes, %d mappings, %d data bytes", b.Size, b.Layer.VirtualSize(), st.Mappings, st.DataBytes)
			fsck(t, raw)
			treetest.Compare(t, src, testenv.MountExt4(t, raw))
		})
	}
}

func sizeName(bs int) string {
	return map[int]string{4 << 10: "4k", 32 << 10: "32k"}[bs]
}

func TestBuildRefusesBadBlockSize(t *testing.T) {
	for _, bs := range []int{64 << 10, 1000, 0} {
		if _, err := Build(context.Background(), t.TempDir(), WithBlobOptions(WithBlockSize(bs))); err == nil {
			t.Errorf("block size %d accepted", bs)
		}
	}
}

func TestDataExtentsSkipsHolesAndZeros(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt([]byte{1}, 4096*3+10)        // block 3
	f.WriteAt(make([]byte, 8192), 4096*10) // explicit zeros: blocks 10, 11
	f.WriteAt([]byte{2}, 4096*12)          // block 12
	f.WriteAt([]byte{3}, 4096*13)          // block 13, joins 12
	f.Truncate(4096 * 20)
	ext, size, err := DataExtents(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []lsmt.Extent{{Offset: 4096 * 3, Length: 4096}, {Offset: 4096 * 12, Length: 8192}}
	if size != 4096*20 || len(ext) != len(want) || ext[0] != want[0] || ext[1] != want[1] {
		t.Fatalf("extents %v size %d, want %v", ext, size, want)
	}
}
