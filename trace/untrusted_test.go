package trace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/vmihailenco/msgpack/v5"
)

// encodeStream writes a trace's header and msgpack form through zstd as it
// is produced, so that inputs far larger than memory can be made: body
// writes the msgpack.
func encodeStream(t testing.TB, body func(e *msgpack.Encoder) error) []byte {
	t.Helper()
	var out bytes.Buffer
	out.Write(magic)
	out.Write(binary.LittleEndian.AppendUint16(nil, Version))
	zw, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := body(msgpack.NewEncoder(zw)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// hostileRecords is the trace of the issue: n one-byte records, all the
// same, on the layer of a real header. 62 M of them are 248 MB of msgpack,
// under the 256 MiB that decoding ever allows, and about 22 KB encoded.
func hostileRecords(t testing.TB, image v1.Hash, layers []v1.Hash, n int) []byte {
	return encodeStream(t, func(e *msgpack.Encoder) error {
		e.EncodeMapLen(3)
		e.EncodeString("image")
		e.EncodeString(image.String())
		e.EncodeString("layers")
		e.EncodeArrayLen(len(layers))
		for _, l := range layers {
			e.EncodeString(l.String())
		}
		e.EncodeString("records")
		e.EncodeArrayLen(4 * n)
		// Record {layer 0, offset 0, length 1, first 0}: four fixints.
		chunk := bytes.Repeat([]byte{0, 0, 1, 0}, 1<<18)
		for left := n; left > 0; left -= 1 << 18 {
			if _, err := e.Writer().Write(chunk[:4*min(left, 1<<18)]); err != nil {
				return err
			}
		}
		return nil
	})
}

// zstdBomb is a trace whose first field, unknown to this version, is n
// zero bytes: a few KB that decompress to n.
func zstdBomb(t testing.TB, field string, n int) []byte {
	return encodeStream(t, func(e *msgpack.Encoder) error {
		e.EncodeMapLen(1)
		e.EncodeString(field)
		w := e.Writer()
		if field == "workload" {
			w.Write([]byte{0xdb}) // str32
		} else {
			w.Write([]byte{0xc6}) // bin32
		}
		w.Write(binary.BigEndian.AppendUint32(nil, uint32(n)))
		zero := make([]byte, 1<<20)
		for left := n; left > 0; left -= len(zero) {
			if _, err := w.Write(zero[:min(left, len(zero))]); err != nil {
				return err
			}
		}
		return nil
	})
}

// measure runs f and returns its time and the bytes it allocated (an upper
// bound of its peak).
func measure(f func()) (time.Duration, uint64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return took, after.TotalAlloc - before.TotalAlloc
}

// TestHostileTracesRefusedFast: the 62 M-record trace and zstd bombs are
// refused in under 100 ms and 64 MiB (issue 13: 2.8 GB resident, and 1 GB
// and 1.2 s for a 9.7 KB bomb).
func TestHostileTracesRefusedFast(t *testing.T) {
	layers := []v1.Hash{hashOf("a")}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"62M one-byte records", hostileRecords(t, hashOf("img"), layers, 62_000_000), "records claims 248000000 entries"},
		{"bomb, unknown field", zstdBomb(t, "x", 1<<30), "decompress to more than"},
		{"bomb, workload", zstdBomb(t, "workload", 1<<30), "decompress to more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.b) > 64<<10 {
				t.Fatalf("the input is %d bytes; the issue's were ~22 KB and 9.7 KB", len(tc.b))
			}
			var err error
			took, alloc := measure(func() { _, err = Unmarshal(tc.b) })
			t.Logf("%d encoded bytes refused in %v, %.1f MiB allocated: %v", len(tc.b), took, float64(alloc)/(1<<20), err)
			if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrRefused and %q", err, tc.want)
			}
			if took > 100*time.Millisecond {
				t.Errorf("took %v, want < 100 ms", took)
			}
			if alloc > 64<<20 {
				t.Errorf("allocated %d bytes, want < 64 MiB", alloc)
			}
		})
	}
}

// TestOverlappingRecordsRefused: a trace within every size bound that is
// made of one range repeated is refused by Validate (the format forbids
// overlapping records), after decoding it, still cheaply.
func TestOverlappingRecordsRefused(t *testing.T) {
	b := hostileRecords(t, hashOf("img"), []v1.Hash{hashOf("a")}, 1000)
	var err error
	took, alloc := measure(func() { _, err = Unmarshal(b) })
	if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("err = %v", err)
	}
	if took > 100*time.Millisecond || alloc > 64<<20 {
		t.Errorf("took %v and %d bytes", took, alloc)
	}
}

// TestRecordedTracesDecode: the bounds leave room for what recording makes:
// MaxRecords scattered records decode.
func TestRecordedTracesDecode(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes two million records")
	}
	tr := &Trace{Image: hashOf("img"), Layers: []v1.Hash{hashOf("a"), hashOf("b")}}
	for i := 0; i < MaxRecords; i++ {
		// A sequential read of 4 KiB pages, every other one, at a steady
		// pace: as regular, so as compressible, as a real start gets.
		tr.Records = append(tr.Records, Record{Layer: i % 2, Offset: int64(i/2) * 8192, Length: 4096, First: time.Duration(i) * time.Microsecond})
	}
	b, err := Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("%d bytes: %v", len(b), err)
	}
	if len(got.Records) != MaxRecords {
		t.Fatalf("%d records", len(got.Records))
	}
	tr.Records = append(tr.Records, Record{Layer: 0, Offset: 1 << 40, Length: 1})
	if b, err = Marshal(tr); err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(b); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("MaxRecords+1: %v", err)
	}
}

// TestCheckLayers: records must end inside the layers the image has.
func TestCheckLayers(t *testing.T) {
	a, b := hashOf("a"), hashOf("b")
	tr := &Trace{Image: hashOf("img"), Layers: []v1.Hash{a, b}, Records: []Record{{0, 0, 4096, 0}, {1, 1 << 30, 10, 0}}}
	if err := tr.CheckLayers([]v1.Descriptor{{Digest: a, Size: 4096}}); err != nil {
		t.Fatalf("layer b is not in the image, its records are not fetched: %v", err)
	}
	err := tr.CheckLayers([]v1.Descriptor{{Digest: a, Size: 4095}})
	if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "points past layer 0") {
		t.Fatalf("err = %v", err)
	}
	if err := tr.CheckLayers([]v1.Descriptor{{Digest: a, Size: 4096}, {Digest: b, Size: 1 << 30}}); err == nil {
		t.Fatal("a record starting at the end of its layer passed")
	}
}
