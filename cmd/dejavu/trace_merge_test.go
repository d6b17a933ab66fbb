package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/trace"
)

// TestMergeRefusesMalformedRecords: trace merge of a trace whose records
// overlap, or are not sorted by first access (the format forbids both), is
// refused with an error saying so and naming the file, and writes no
// output; the same records sorted and apart merge.
func TestMergeRefusesMalformedRecords(t *testing.T) {
	dir := t.TempDir()
	base := trace.Trace{
		Image:    mustHash(t, "sha256:"+strings.Repeat("1", 64)),
		Layers:   []v1.Hash{mustHash(t, "sha256:"+strings.Repeat("2", 64))},
		Workload: "web",
		Recorder: trace.RecorderBackstore,
		Runs:     1,
	}
	write := func(name string, recs ...trace.Record) string {
		tr := base
		tr.Records = recs
		path := filepath.Join(dir, name)
		// WriteFile encodes what it is given, unchecked, as a hostile or
		// broken writer would.
		if err := trace.WriteFile(path, &tr); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.djv", trace.Record{Offset: 0, Length: 4096, First: time.Millisecond})
	for _, tc := range []struct {
		name string
		recs []trace.Record
		want string
	}{
		{"overlapping", []trace.Record{{Offset: 0, Length: 8192, First: 1}, {Offset: 4096, Length: 8192, First: 2}}, "overlap"},
		{"unsorted", []trace.Record{{Offset: 0, Length: 4096, First: 2 * time.Millisecond}, {Offset: 8192, Length: 4096, First: time.Millisecond}}, "not sorted by first access"},
	} {
		in := write(tc.name+".djv", tc.recs...)
		out := filepath.Join(dir, tc.name+"-merged.djv")
		_, err := run(t, "trace", "merge", good, in, "--out", out)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), in) {
			t.Errorf("merge of %s records: %v; want an error naming %s and saying %q", tc.name, err, in, tc.want)
		}
		if _, err := os.Lstat(out); err == nil {
			t.Errorf("merge of %s records wrote %s", tc.name, out)
		}
	}
	ok := write("ok.djv", trace.Record{Offset: 0, Length: 4096, First: 1}, trace.Record{Offset: 8192, Length: 4096, First: 2})
	if _, err := run(t, "trace", "merge", good, ok, "--out", filepath.Join(dir, "merged.djv")); err != nil {
		t.Errorf("merge of sorted records apart: %v", err)
	}
}
