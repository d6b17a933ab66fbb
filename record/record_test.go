package record_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/record"
)

func TestMain(m *testing.M) {
	launch.Init()
	os.Exit(m.Run())
}

// helloWorld serves the real converted hello-world overlaybd image from an
// embedded registry.
func helloWorld(t *testing.T) string {
	t.Helper()
	testenv.RequireLazyMount(t)
	return testreg.Start(t).HelloWorld(t, "hello:obd")
}

// TestRecord: each recorder sees the start's reads; the runs are reported
// one by one and merged with min-runs.
func TestRecord(t *testing.T) {
	ref := helloWorld(t)
	for _, recorder := range []record.Recorder{record.Backstore, record.EBPF} {
		t.Run(string(recorder), func(t *testing.T) {
			var runs []record.Run
			tr, err := record.Record(context.Background(), ref, record.WithRecorder(recorder), record.WithRuns(2), record.WithMinRuns(2),
				record.WithMountOptions(lazymount.WithStateDir(t.TempDir())), record.WithProgress(func(r record.Run) { runs = append(runs, r) }))
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != 2 || runs[0].N != 1 || runs[1].N != 2 {
				t.Fatalf("progress: %d runs", len(runs))
			}
			for _, r := range runs {
				if len(r.Trace.Records) == 0 || r.Timing.Total <= 0 || r.Timing.Mounted > r.Timing.Total {
					t.Fatalf("run %d: %d records, timing %+v", r.N, len(r.Trace.Records), r.Timing)
				}
				// Kept only when read in both runs: never more than either.
				if tr.Bytes() > r.Trace.Bytes() {
					t.Fatalf("merged %d bytes, run %d read %d", tr.Bytes(), r.N, r.Trace.Bytes())
				}
			}
			if len(tr.Records) == 0 || tr.Recorder != string(recorder) || tr.Workload != "default" {
				t.Fatalf("merged trace: %d records, recorder %q, workload %q", len(tr.Records), tr.Recorder, tr.Workload)
			}
		})
	}
}

// TestRecordOneOfTwo: with min-runs 1 the merge keeps what either run
// read, so at least as much as each.
func TestRecordOneOfTwo(t *testing.T) {
	ref := helloWorld(t)
	var most int64
	tr, err := record.Record(context.Background(), ref, record.WithRuns(2), record.WithWorkload("hello"),
		record.WithMountOptions(lazymount.WithStateDir(t.TempDir())), record.WithProgress(func(r record.Run) { most = max(most, r.Trace.Bytes()) }))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Bytes() < most || tr.Workload != "hello" {
		t.Fatalf("merged %d bytes (workload %q), a run read %d", tr.Bytes(), tr.Workload, most)
	}
}

func TestRecordBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts []record.Option
		want string
	}{
		{[]record.Option{record.WithRecorder(record.Recorder("bogus"))}, "want backstore or ebpf"},
		{[]record.Option{record.WithRuns(0)}, "min-runs"},
		{[]record.Option{record.WithRuns(2), record.WithMinRuns(3)}, "min-runs"},
		{[]record.Option{record.WithMinRuns(0)}, "min-runs"},
	} {
		if _, err := record.Record(context.Background(), "127.0.0.1:1/none:x", tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one with %q", err, tc.want)
		}
	}
	if _, _, err := record.Device(context.Background(), "/nonexistent", "127.0.0.1:1/none:x", 0); err == nil {
		t.Error("recorded a device that does not exist")
	}
}
