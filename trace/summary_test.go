package trace

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestSummarize(t *testing.T) {
	tr := &Trace{Image: hashOf("img"), Layers: []v1.Hash{hashOf("a"), hashOf("b")}, Workload: "web", Recorder: RecorderEBPF, Runs: 3,
		Tool: "test", Created: time.Unix(1700000000, 0).UTC()}
	for i := range 12 {
		tr.Records = append(tr.Records, Record{Layer: i % 2, Offset: int64(i) << 20, Length: int64(i+1) * 4096, First: time.Duration(i) * time.Millisecond})
	}
	s := Summarize(tr)
	if s.Image != hashOf("img").String() || s.Workload != "web" || s.Recorder != RecorderEBPF || s.Runs != 3 || s.Tool != "test" || !s.Created.Equal(tr.Created) {
		t.Errorf("summary header %+v", s)
	}
	if !slices.Equal(s.Layers, []string{hashOf("a").String(), hashOf("b").String()}) {
		t.Errorf("layers %v", s.Layers)
	}
	// Layer 0 holds records 0, 2, ..., 10 (lengths 1, 3, ..., 11 pages),
	// layer 1 the others (2, 4, ..., 12 pages).
	if s.Records != 12 || s.Bytes != 78*4096 || s.Span != "11ms" || !slices.Equal(s.PerLayer, []int64{36 * 4096, 42 * 4096}) {
		t.Errorf("summary totals: %d records, %d bytes, span %s, per layer %v", s.Records, s.Bytes, s.Span, s.PerLayer)
	}
	if len(s.Largest) != 10 || s.Largest[0] != tr.Records[11] || s.Largest[9] != tr.Records[2] {
		t.Errorf("largest %v", s.Largest)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"image", "layers", "workload", "recorder", "runs", "tool", "created", "records", "bytes", "span", "bytesPerLayer", "largest"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("summary JSON lacks %q: %s", k, b)
		}
	}
}

func TestSummarizeOddTraces(t *testing.T) {
	empty := Summarize(&Trace{Layers: []v1.Hash{hashOf("a")}})
	if empty.Records != 0 || empty.Bytes != 0 || len(empty.Largest) != 0 || !slices.Equal(empty.PerLayer, []int64{0}) {
		t.Errorf("empty trace: %+v", empty)
	}
	// A record naming a missing layer must not panic the summary.
	bad := Summarize(&Trace{Layers: []v1.Hash{hashOf("a")}, Records: []Record{{Layer: 3, Length: 10}, {Layer: -1, Length: 5}, {Layer: 0, Length: 7}}})
	if bad.Bytes != 22 || !slices.Equal(bad.PerLayer, []int64{7}) {
		t.Errorf("trace with bad layers: %+v", bad)
	}
}
