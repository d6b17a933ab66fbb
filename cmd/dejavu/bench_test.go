package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/busybox"
	"github.com/dejavu-project/dejavu/launch/timed"
	"github.com/dejavu-project/dejavu/trace"
)

// BenchmarkRecordingOverhead times a cold start of the same workload with
// recording off, with the backstore recorder and with the eBPF recorder,
// alternating, each from an empty cache with the page cache dropped. It
// reports each mode's mean and the ratios to recording off (aim: <= 1.03),
// the same ratios of the medians (a start slowed by the rest of the
// machine moves the mean of a few starts by more than the recorder does),
// and the encoded trace size per MB the trace covers.
func BenchmarkRecordingOverhead(b *testing.B) {
	_, _, ref := busybox.Image(b)
	dir := b.TempDir()
	modes := []string{"off", "backstore", "ebpf"}
	total := map[string]time.Duration{}
	starts := map[string][]time.Duration{}
	var traceBytes, covered int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Rotate the order so that no mode always follows the same one.
		for k := range modes {
			m := modes[(i+k)%len(modes)]
			var stderr string
			switch m {
			case "off":
				timed.DropPageCache()
				_, stderr = dejavu(b, "run", ref, "--cache", b.TempDir(), "--state-dir", b.TempDir())
			default:
				// record empties the cache and drops the page cache itself.
				file := filepath.Join(dir, m+".djv")
				_, stderr = dejavu(b, "trace", "record", ref, "--recorder", m, "--out", file, "--state-dir", b.TempDir())
				if m == "backstore" {
					fi, _ := os.Stat(file)
					tr, err := trace.ReadFile(file)
					if err != nil {
						b.Fatal(err)
					}
					traceBytes, covered = fi.Size(), tr.Bytes()
				}
			}
			d := readyIn(b, stderr)
			total[m] += d
			starts[m] = append(starts[m], d)
		}
	}
	for _, m := range modes {
		b.ReportMetric(float64(total[m].Microseconds())/1000/float64(b.N), m+"-ms")
	}
	b.ReportMetric(float64(total["backstore"])/float64(total["off"]), "backstore-ratio")
	b.ReportMetric(float64(total["ebpf"])/float64(total["off"]), "ebpf-ratio")
	for _, m := range modes[1:] {
		b.ReportMetric(float64(median(starts[m]))/float64(median(starts["off"])), m+"-median-ratio")
	}
	b.ReportMetric(float64(traceBytes)/(float64(covered)/1e6), "trace-bytes/MB")
}

// readyIn finds the "ready in D" that run and record print: the time from
// the start of the mount to ready.
func readyIn(b *testing.B, stderr string) time.Duration {
	i := strings.Index(stderr, "ready in ")
	if i < 0 {
		b.Fatalf("no timing in:\n%s", stderr)
	}
	f := strings.Fields(stderr[i+len("ready in "):])
	d, err := time.ParseDuration(strings.TrimSuffix(f[0], ","))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}
