package replay

import (
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/trace"
)

// TestPlanRefusesUntrustedTraces: the planner refuses what decoding would
// (overlapping records, too many) and records past their layer, so a trace
// built in memory cannot make it split terabytes into units.
func TestPlanRefusesUntrustedTraces(t *testing.T) {
	image := sized(1<<20, h("a"))
	for _, tc := range []struct {
		name string
		recs []trace.Record
		want string
	}{
		{"past the layer", []trace.Record{{Layer: 0, Offset: 0, Length: 1 << 40}}, "points past layer 0"},
		{"ends past the layer", []trace.Record{{Layer: 0, Offset: 1<<20 - 1, Length: 2}}, "points past layer 0"},
		{"overlapping", []trace.Record{{Layer: 0, Offset: 0, Length: 10}, {Layer: 0, Offset: 5, Length: 10, First: time.Millisecond}}, "overlap"},
		{"too many", make([]trace.Record, trace.MaxRecords+1), "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &trace.Trace{Image: h("img"), Layers: []v1.Hash{h("a")}, Records: tc.recs}
			start := time.Now()
			_, err := New(tr, image, nil, Options{})
			if err == nil || !errors.Is(err, trace.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrRefused and %q", err, tc.want)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("refused after %v", took)
			}
		})
	}
}
