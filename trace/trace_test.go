package trace

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

func hashOf(s string) v1.Hash {
	h, _, _ := v1.SHA256(strings.NewReader(s))
	return h
}

func sample(n int) *Trace {
	r := rand.New(rand.NewPCG(1, 2))
	t := &Trace{Image: hashOf("img"), Layers: []v1.Hash{hashOf("a"), hashOf("b")}, Workload: "py", Command: []string{"python3", "-c", "import numpy"},
		Recorder: RecorderBackstore, Runs: 1, Tool: "test", Created: time.Unix(1700000000, 0).UTC()}
	for i := 0; i < n; i++ {
		t.Records = append(t.Records, Record{Layer: r.IntN(2), Offset: r.Int64N(1 << 30), Length: r.Int64N(1<<20) + 1, First: time.Duration(r.Int64N(int64(5 * time.Second)))})
	}
	t.Normalize()
	return t
}

func TestCodecRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1000} {
		tr := sample(n)
		b, err := Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Image != tr.Image || len(got.Layers) != 2 || got.Workload != "py" || strings.Join(got.Command, " ") != "python3 -c import numpy" ||
			got.Runs != 1 || !got.Created.Equal(tr.Created) || len(got.Records) != len(tr.Records) {
			t.Fatalf("round trip: %+v", got)
		}
		for i := range got.Records {
			if got.Records[i] != tr.Records[i] {
				t.Fatalf("record %d: %+v, want %+v", i, got.Records[i], tr.Records[i])
			}
		}
		if n == 1000 {
			t.Logf("%d records covering %d MB encode to %d bytes (%.0f bytes per MB covered)", len(tr.Records), tr.Bytes()>>20, len(b), float64(len(b))/float64(tr.Bytes()>>20))
		}
	}
}

func TestNormalizeKeepsEarliest(t *testing.T) {
	tr := &Trace{Layers: []v1.Hash{hashOf("a")}, Records: []Record{
		{0, 100, 100, 5 * time.Millisecond}, {0, 150, 100, 2 * time.Millisecond}, {0, 250, 10, 9 * time.Millisecond}, {0, 1000, 10, time.Millisecond},
	}}
	tr.Normalize()
	want := []Record{{0, 1000, 10, time.Millisecond}, {0, 100, 160, 2 * time.Millisecond}}
	if len(tr.Records) != 2 || tr.Records[0] != want[0] || tr.Records[1] != want[1] {
		t.Fatalf("%+v", tr.Records)
	}
}

func TestMergeMinRuns(t *testing.T) {
	base := Trace{Image: hashOf("i"), Layers: []v1.Hash{hashOf("a")}}
	r1, r2, r3 := base, base, base
	r1.Records = []Record{{0, 0, 100, 10}, {0, 500, 100, 50}}
	r2.Records = []Record{{0, 50, 100, 5}}
	r3.Records = []Record{{0, 60, 20, 1}, {0, 900, 10, 3}}
	m, err := Merge([]*Trace{&r1, &r2, &r3}, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Covered twice or more: 50..100 (runs 1,2; 60..80 by 3 runs).
	if m.Runs != 3 || len(m.Records) != 1 || m.Records[0].Offset != 50 || m.Records[0].Length != 50 || m.Records[0].First != 1 {
		t.Fatalf("merged %+v", m.Records)
	}
	all, _ := Merge([]*Trace{&r1, &r2, &r3}, 1)
	if all.Bytes() != 150+100+10 {
		t.Fatalf("union covers %d bytes", all.Bytes())
	}
	other := base
	other.Image = hashOf("other")
	if _, err := Merge([]*Trace{&r1, &other}, 1); err == nil {
		t.Fatal("merged traces of two images")
	}
}

func TestUnmarshalBadInput(t *testing.T) {
	good, _ := Marshal(sample(10))
	zenc, _ := zstd.NewWriter(nil)
	wrap := func(msgpack []byte) []byte {
		b := append([]byte{}, good[:10]...)
		return append(b, zenc.EncodeAll(msgpack, nil)...)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "bad magic"},
		{"magic", append([]byte("NOTTRACE"), good[8:]...), "bad magic"},
		{"version", append(append(append([]byte{}, good[:8]...), 9, 0), good[10:]...), "version 9"},
		{"not zstd", append(append([]byte{}, good[:10]...), "garbage"...), "decompress"},
		{"truncated", good[:len(good)-5], "decompress"},
		// A map claiming 2^31 fields, and a records array claiming 2^31-1.
		{"huge map", wrap([]byte{0xdf, 0x7f, 0xff, 0xff, 0xff}), "claims"},
		{"huge records", wrap([]byte{0x81, 0xa7, 'r', 'e', 'c', 'o', 'r', 'd', 's', 0xdd, 0x7f, 0xff, 0xff, 0xff}), "claims"},
		{"bad layer index", wrap([]byte{0x82, 0xa6, 'l', 'a', 'y', 'e', 'r', 's', 0x90, 0xa7, 'r', 'e', 'c', 'o', 'r', 'd', 's', 0x94, 5, 0, 1, 0}), "no layers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Unmarshal(tc.b)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Fatalf("allocated %d bytes on bad input", grew)
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, n := range []int{0, 3, 40} {
		b, _ := Marshal(sample(n))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := Unmarshal(b)
		if err != nil {
			return
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("decoded an invalid trace: %v", err)
		}
		if err := tr.checkSorted(); err != nil {
			t.Fatalf("decoded an unsorted trace: %v", err)
		}
		again, err := Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Unmarshal(again); err != nil {
			t.Fatalf("re-encoded trace does not decode: %v", err)
		}
	})
}

// TestExportLayout decodes the overlaybd trace file independently of the
// writer: header fields, record layout, CRC.
func TestExportLayout(t *testing.T) {
	// Export needs blobs: one uncompressed stand-in layer is enough here;
	// the compressed path is tested with a real image in record_test.go.
	tr := &Trace{Image: hashOf("i"), Layers: []v1.Hash{hashOf("a")}, Records: []Record{{0, 4096, 3 << 20, 0}, {0, 100, 10, 1}}}
	var buf bytes.Buffer
	if err := ExportOverlaybd(&buf, tr, uncompressedBlobs(1, 1<<30)); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if binary.LittleEndian.Uint32(b[0:]) != 3270449184 {
		t.Fatal("magic")
	}
	size := binary.LittleEndian.Uint64(b[8:])
	if int(size) != len(b)-24 || size%24 != 0 {
		t.Fatalf("data size %d for a file of %d bytes", size, len(b))
	}
	tab := crc32.MakeTable(crc32.Castagnoli)
	crc := ^crc32.Update(^uint32(0), tab, b[24:])
	if binary.LittleEndian.Uint32(b[16:]) != crc {
		t.Fatal("checksum")
	}
	var total uint64
	for i := 24; i < len(b); i += 24 {
		r := b[i : i+24]
		if r[0] != 'R' || binary.LittleEndian.Uint32(r[4:]) != 0 {
			t.Fatalf("record %x", r)
		}
		count := binary.LittleEndian.Uint64(r[8:])
		if count == 0 || count > 1<<20 {
			t.Fatalf("count %d", count)
		}
		total += count
	}
	if total != 3<<20+10 {
		t.Fatalf("records cover %d bytes", total)
	}
}

// TestMergeRefusesWhatCannotBeMerged: traces of different workloads, a
// min-runs larger than the traces given, and runs sharing no range are
// errors, not a silently mixed or empty trace.
func TestMergeRefusesWhatCannotBeMerged(t *testing.T) {
	base := Trace{Image: hashOf("i"), Layers: []v1.Hash{hashOf("a")}, Workload: "web"}
	r1, r2 := base, base
	r1.Records = []Record{{0, 0, 100, 10}}
	r2.Records = []Record{{0, 500, 100, 5}}
	other := r2
	other.Workload = "batch"
	for _, tc := range []struct {
		runs    []*Trace
		minRuns int
		want    string
	}{
		{[]*Trace{&r1, &other}, 1, `workload "batch"`},
		{[]*Trace{&r1, &r2}, 3, "min-runs 3, but 2 traces"},
		{[]*Trace{&r1, &r2}, 2, "the merge would be empty"},
	} {
		if _, err := Merge(tc.runs, tc.minRuns); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Merge(min-runs %d): %v, want %q", tc.minRuns, err, tc.want)
		}
	}
}
