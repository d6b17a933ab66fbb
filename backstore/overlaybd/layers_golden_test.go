package overlaybd

import (
	"context"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// TestConvertLayersMatchesGolden converts the source of the golden apply/
// image and compares the structure of every layer with the real
// convertor's: the same UUIDs and parent chain (both derived from chain
// IDs), virtual size, wrapper, compression and block size; the upper layer
// smaller than the lower one; the merged file systems holding the same
// files.
func TestConvertLayersMatchesGolden(t *testing.T) {
	testenv.RequireCommands(t, "mke2fs", "debugfs", "e2fsck")
	built, err := Convert(context.Background(), testenv.GoldenApplySource(t))
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	want := []*Blob{
		openBlobFile(t, golden(t, "apply", "L0", "overlaybd.commit")),
		openBlobFile(t, golden(t, "apply", "L1", "overlaybd.commit")),
	}
	if len(built.LayerPaths) != len(want) {
		t.Fatalf("%d layers, want %d", len(built.LayerPaths), len(want))
	}
	var got []*Blob
	for i, p := range built.LayerPaths {
		g, w := openBlobFile(t, p).Describe(), want[i].Describe()
		got = append(got, openBlobFile(t, p))
		for _, c := range []struct {
			field     string
			got, want any
		}{
			{"uuid", g.UUID, w.UUID},
			{"parent uuid", g.ParentUUID, w.ParentUUID},
			{"virtual size", g.VirtualSize, w.VirtualSize},
			{"tar", g.Tar, w.Tar},
			{"payload offset", g.PayloadOffset, w.PayloadOffset},
			{"compression", g.Compression, w.Compression},
			{"block size", g.BlockSize, w.BlockSize},
			{"zeroed bytes", g.ZeroedBytes > 0, w.ZeroedBytes > 0},
		} {
			if c.got != c.want {
				t.Errorf("layer %d: %s %v, the real convertor's %v", i, c.field, c.got, c.want)
			}
		}
		t.Logf("layer %d: %d mappings, %d data bytes, blob %d bytes (real convertor: %d mappings, %d data bytes, blob %d bytes)",
			i, g.Mappings, g.DataBytes, g.BlobSize, w.Mappings, w.DataBytes, w.BlobSize)
	}
	up, low := got[1].Describe(), got[0].Describe()
	if up.DataBytes >= low.DataBytes/4 {
		t.Errorf("upper layer holds %d data bytes, lower %d: the upper one should hold only what layer 2 changed", up.DataBytes, low.DataBytes)
	}
	raw := rawFromFiles(t, built.LayerPaths...)
	fsck(t, raw)
	if ls := debugfs(t, raw, "ls -l /var/log"); strings.Contains(ls, "old.log") {
		t.Errorf("/var/log still lists old.log:\n%s", ls)
	}
	if got := debugfs(t, raw, "cat /etc/hostname"); !strings.HasSuffix(got, "golden-host-v2\n") {
		t.Errorf("/etc/hostname reads %q", got)
	}
	t.Run("files", func(t *testing.T) {
		real := rawFromFiles(t, golden(t, "apply", "L0", "overlaybd.commit"), golden(t, "apply", "L1", "overlaybd.commit"))
		treetest.Compare(t, testenv.MountExt4(t, real), testenv.MountExt4(t, raw))
	})
}
