package replay

import (
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/trace"
)

// fuzzImage is a small image: two layers of 64 KiB and 1 MiB.
var fuzzImage = sized(64<<10, h("a"))

func init() { fuzzImage = append(fuzzImage, sized(1<<20, h("b"))...) }

// FuzzDecodePlan feeds encoded traces through what a start does with one
// pulled from a registry: decode, then plan against a small image. Whatever
// the bytes, both must return, without panicking, and a plan must stay
// inside the image: every unit within its layer, no more bytes than the
// layers hold.
func FuzzDecodePlan(f *testing.F) {
	ms := time.Millisecond
	for _, recs := range [][]trace.Record{
		nil,
		{{Layer: 0, Offset: 0, Length: 4096}},
		{{Layer: 0, Offset: 0, Length: 4096}, {Layer: 1, Offset: 8192, Length: 1 << 19, First: ms}, {Layer: 0, Offset: 9000, Length: 100, First: 2 * ms}},
		{{Layer: 2, Offset: 0, Length: 1}, {Layer: 1, Offset: 1<<20 - 1, Length: 1, First: 300 * ms}},
	} {
		layers := []v1.Hash{h("a"), h("b"), h("gone")}
		b, err := trace.Marshal(&trace.Trace{Image: h("img"), Layers: layers, Workload: "w", Records: recs})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, fifo bool) {
		tr, err := trace.Unmarshal(b)
		if err != nil {
			return
		}
		opts := Options{}
		if fifo {
			opts.Policy = PolicyFIFO
		}
		p, err := New(tr, fuzzImage, nil, opts)
		if err != nil {
			return
		}
		var total int64
		for _, u := range p.Units {
			if u.Layer < 0 || u.Layer >= len(fuzzImage) || u.Offset < 0 || u.Length <= 0 || u.End() > fuzzImage[u.Layer].Size {
				t.Fatalf("unit %+v outside the image", u)
			}
			total += u.Length
		}
		if total != p.Bytes || total > 64<<10+1<<20 {
			t.Fatalf("plan of %d bytes (says %d)", total, p.Bytes)
		}
	})
}
