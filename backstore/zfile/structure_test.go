package zfile_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/zfile"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// TestWriterMatchesGoldenStructure compresses the golden input with the same
// parameters that the real overlaybd-zfile used and compares the header and
// trailer field by field. The compressed bytes differ (two LZ4/zstd
// implementations), so offsets and CRCs of the data may differ; everything
// that describes the layout must not.
func TestWriterMatchesGoldenStructure(t *testing.T) {
	dir := filepath.Join(testenv.OverlaybdTestdata(t), "golden", "zfile")
	input, err := os.ReadFile(filepath.Join(dir, "input_3MiB.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		golden string
		algo   zfile.Algorithm
		bs     int
	}{
		{"input.lz4.bs4k.zfile", zfile.LZ4, 4 << 10},
		{"input.zstd.bs4k.zfile", zfile.Zstd, 4 << 10},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			gold, err := os.ReadFile(filepath.Join(dir, tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			ours := compress(t, input, zfile.WithAlgorithm(tc.algo), zfile.WithBlockSize(tc.bs), zfile.WithHeaderIndex(false))
			// overlaybd-zfile's header is written before any data, so it is
			// fully determined by the parameters: it must be identical.
			if !bytes.Equal(ours[:zfile.HeaderSize], gold[:zfile.HeaderSize]) {
				t.Errorf("header bytes differ:\nours %x\ngold %x", ours[:96], gold[:96])
			}
			gh, _ := zfile.ParseHeader(gold[len(gold)-zfile.HeaderSize:])
			oh, err := zfile.ParseHeader(ours[len(ours)-zfile.HeaderSize:])
			if err != nil {
				t.Fatal(err)
			}
			type fields struct {
				Flags, IndexSize, OriginalSize uint64
				BlockSize                      uint32
				Algo                           zfile.Algorithm
				Level                          uint8
				Verify, UseDict                bool
				DictSize                       uint32
			}
			f := func(h zfile.Header) fields {
				return fields{h.Flags, h.IndexSize, h.OriginalSize, h.BlockSize, h.Algorithm, h.Level, h.Verify, h.UseDict, h.DictSize}
			}
			if f(oh) != f(gh) {
				t.Errorf("trailer fields differ:\nours %+v\ngold %+v", f(oh), f(gh))
			}
			// Layout: the index ends where the trailer starts, the file is not
			// padded, and the index CRC covers the index.
			for name, b := range map[string][]byte{"ours": ours, "gold": gold} {
				h, _ := zfile.ParseHeader(b[len(b)-zfile.HeaderSize:])
				if h.IndexOffset+4*h.IndexSize != uint64(len(b)-zfile.HeaderSize) {
					t.Errorf("%s: index at %d of %d blocks does not end at the trailer (%d)", name, h.IndexOffset, h.IndexSize, len(b)-zfile.HeaderSize)
				}
				z, err := zfile.Open(bytes.NewReader(b), int64(len(b)))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				// Every block ends with the CRC of the bytes before it.
				for i := 0; i < z.Blocks(); i++ {
					if _, err := z.ReadAt(make([]byte, 1), int64(i)*int64(tc.bs)); err != nil && err != io.EOF {
						t.Fatalf("%s: block %d: %v", name, i, err)
					}
				}
			}
		})
	}
	// The header rewritten at Close, as overlaybd-commit -z writes it (0x1b).
	ours := compress(t, input)
	h, err := zfile.ParseHeader(ours)
	if err != nil {
		t.Fatal(err)
	}
	if h.Flags != 0x1b || !h.HasIndex() {
		t.Fatalf("rewritten header flags %#x, want 0x1b", h.Flags)
	}
	tr, _ := zfile.ParseHeader(ours[len(ours)-zfile.HeaderSize:])
	if tr.Flags != 0x16 || tr.IndexOffset != h.IndexOffset || tr.IndexCRC != h.IndexCRC {
		t.Fatalf("trailer %+v does not match rewritten header %+v", tr, h)
	}
}
