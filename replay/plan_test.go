package replay

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/trace"
)

func h(s string) v1.Hash {
	hh, _, _ := v1.SHA256(strings.NewReader(s))
	return hh
}

// sized returns the layers of an image, each of the given size.
func sized(size int64, digests ...v1.Hash) []v1.Descriptor {
	var out []v1.Descriptor
	for _, d := range digests {
		out = append(out, v1.Descriptor{Digest: d, Size: size})
	}
	return out
}

func TestPlanJoinsOrdersSkipsAndBudgets(t *testing.T) {
	const ms = time.Millisecond
	tr := &trace.Trace{Image: h("img"), Layers: []v1.Hash{h("gone"), h("a"), h("b")}, Records: []trace.Record{
		{Layer: 1, Offset: 0, Length: 4096, First: 0},
		{Layer: 1, Offset: 8192, Length: 4096, First: 1 * ms},        // joins: gap 4 KiB
		{Layer: 0, Offset: 0, Length: 1000, First: 2 * ms},           // layer not in the image
		{Layer: 2, Offset: 1 << 20, Length: 4096, First: 3 * ms},     // another layer
		{Layer: 1, Offset: 10 << 20, Length: 4096, First: 4 * ms},    // far away: new unit
		{Layer: 1, Offset: 16384, Length: 4096, First: 500 * ms},     // near, but much later: new unit
		{Layer: 2, Offset: 50 << 20, Length: 9 << 20, First: 6 * ms}, // larger than a unit: split
	}}
	// The image has layers a and b, in the other order.
	image := sized(1<<30, h("b"), h("a"))
	p, err := New(tr, image, nil, Options{MaxUnit: 4 << 20, Gap: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []Unit{
		{Layer: 1, Offset: 0, Length: 12288, First: 0},
		{Layer: 0, Offset: 1 << 20, Length: 4096, First: 3 * ms},
		{Layer: 1, Offset: 10 << 20, Length: 4096, First: 4 * ms},
		{Layer: 0, Offset: 50 << 20, Length: 4 << 20, First: 6 * ms},
		{Layer: 0, Offset: 54 << 20, Length: 4 << 20, First: 6 * ms},
		{Layer: 0, Offset: 58 << 20, Length: 1 << 20, First: 6 * ms},
		{Layer: 1, Offset: 16384, Length: 4096, First: 500 * ms},
	}
	if len(p.Units) != len(want) {
		t.Fatalf("units %+v", p.Units)
	}
	for i := range want {
		if p.Units[i] != want[i] {
			t.Fatalf("unit %d = %+v, want %+v", i, p.Units[i], want[i])
		}
	}
	if p.Dropped != 1 || p.DroppedBytes != 1000 {
		t.Errorf("dropped %d (%d bytes)", p.Dropped, p.DroppedBytes)
	}
	// Cached ranges are skipped, the budget cuts the tail.
	cached := func(layer int, off, n int64) bool { return layer == 1 && off == 10<<20 }
	p, _ = New(tr, image, cached, Options{Budget: 5 << 20, MaxUnit: 4 << 20})
	if p.Skipped != 4096 || p.Bytes > 5<<20 || p.Cut == 0 {
		t.Errorf("skipped %d, bytes %d, cut %d", p.Skipped, p.Bytes, p.Cut)
	}
	// A trace of another image is refused.
	if _, err := New(tr, sized(1<<30, h("x")), nil, Options{}); err == nil || !strings.Contains(err.Error(), "shares no layer") {
		t.Fatalf("other image: %v", err)
	}
}

func TestFIFOKeepsRecordedOrder(t *testing.T) {
	tr := &trace.Trace{Image: h("i"), Layers: []v1.Hash{h("a")}, Records: []trace.Record{
		{Layer: 0, Offset: 0, Length: 4096, First: 0},
		{Layer: 0, Offset: 4096, Length: 3 << 20, First: 1},
	}}
	p, err := New(tr, sized(1<<30, h("a")), nil, Options{Policy: PolicyFIFO})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Units) != 4 || p.Units[0].Length != 4096 || p.Units[1].Length != 1<<20 || p.Units[3].Offset != 4096+2<<20 {
		t.Fatalf("fifo units %+v", p.Units)
	}
}

func TestPolicies(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Engine
	}{
		{"dejavu", Engine{Workers: 4, Batch: 2 << 20, Priority: true, Follow: true}},
		// overlaybd's own replay, whatever the tuning.
		{"fifo", Engine{Workers: 16, Batch: 0}},
	} {
		p, err := ParsePolicy(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Engine(4, 2<<20); err != nil || got != tc.want {
			t.Errorf("%s: engine %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "FIFO", "lifo"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("policy %q accepted", bad)
		}
	}
	if _, err := Policy("lifo").Engine(4, 0); err == nil {
		t.Error("engine of policy lifo")
	}
}
