package lazymount

import (
	"errors"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/metrics"
)

// TestMetricsExposition: the served exposition has every series the mounts
// report, with its type, labels and values, next to the Go runtime and
// process metrics.
func TestMetricsExposition(t *testing.T) {
	reg := metrics.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	o := m.observer()
	o.DeviceRead(backstore.DeviceRead{Length: 4096, Latency: 2 * time.Millisecond, Cached: true})
	o.DeviceRead(backstore.DeviceRead{Length: 512, Latency: 30 * time.Millisecond})
	o.BlobFetch(backstore.BlobFetch{Length: 1 << 20, Ranges: 3, Cause: backstore.CausePrefetch, Latency: 40 * time.Millisecond})
	o.BlobFetch(backstore.BlobFetch{Length: 100, Cause: backstore.CauseDemand, Latency: time.Second, Err: errors.New("gone")})

	addr, err := metrics.Serve(t.Context(), "127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	families := scrape(t, addr)

	for _, c := range []struct {
		name   string
		typ    dto.MetricType
		labels string // name=value of the series checked; "" for none
		value  float64
	}{
		{"dejavu_device_reads_total", dto.MetricType_COUNTER, "cached=true", 1},
		{"dejavu_device_read_bytes_total", dto.MetricType_COUNTER, "cached=false", 512},
		{"dejavu_device_read_seconds", dto.MetricType_HISTOGRAM, "cached=true", 1},
		{"dejavu_fetches_total", dto.MetricType_COUNTER, "cause=prefetch", 1},
		{"dejavu_fetch_bytes_total", dto.MetricType_COUNTER, "cause=prefetch", 1 << 20},
		{"dejavu_fetch_ranges_total", dto.MetricType_COUNTER, "cause=prefetch", 3},
		{"dejavu_fetch_ranges_total", dto.MetricType_COUNTER, "cause=demand", 1}, // a plain GET is one range
		{"dejavu_fetch_seconds", dto.MetricType_HISTOGRAM, "cause=demand", 1},
		{"dejavu_fetch_errors_total", dto.MetricType_COUNTER, "cause=demand", 1},
		{"dejavu_prefetch_units", dto.MetricType_GAUGE, "outcome=hit", 0},
		{"dejavu_prefetch_units", dto.MetricType_GAUGE, "outcome=pending", 0},
		{"dejavu_prefetch_hit_bytes", dto.MetricType_GAUGE, "", 0},
		{"dejavu_prefetch_wasted_bytes", dto.MetricType_GAUGE, "", 0},
		{"dejavu_prefetch_running", dto.MetricType_GAUGE, "", 0},
		{"go_goroutines", dto.MetricType_GAUGE, "", -1},
		{"go_memstats_heap_alloc_bytes", dto.MetricType_GAUGE, "", -1},
		{"process_start_time_seconds", dto.MetricType_GAUGE, "", -1},
		{"process_open_fds", dto.MetricType_GAUGE, "", -1},
		{"process_resident_memory_bytes", dto.MetricType_GAUGE, "", -1},
	} {
		t.Run(c.name+"/"+c.labels, func(t *testing.T) {
			f := families[c.name]
			if f == nil {
				t.Fatalf("no %s", c.name)
			}
			if f.GetType() != c.typ {
				t.Fatalf("%s is a %v, want a %v", c.name, f.GetType(), c.typ)
			}
			s := series(f, c.labels)
			if s == nil {
				t.Fatalf("no %s{%s}", c.name, c.labels)
			}
			got := value(s)
			if c.value < 0 {
				if got <= 0 {
					t.Fatalf("%s = %v, want > 0", c.name, got)
				}
				return
			}
			if got != c.value {
				t.Fatalf("%s{%s} = %v, want %v", c.name, c.labels, got, c.value)
			}
		})
	}
	h := series(families["dejavu_fetch_seconds"], "cause=prefetch").GetHistogram()
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	// The 40 ms fetch falls in the 50 ms bucket; the parser adds +Inf.
	if !slices.Equal(bounds, append(slices.Clone(latencyBuckets), math.Inf(1))) ||
		h.GetBucket()[4].GetCumulativeCount() != 0 || h.GetBucket()[5].GetCumulativeCount() != 1 {
		t.Fatalf("dejavu_fetch_seconds buckets %v", h.GetBucket())
	}
}

func TestMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := metrics.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("a second Metrics registered on one registry")
	}
}

// scrape gets the text exposition a Prometheus server would read.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + metrics.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// series finds f's series with the label pair "name=value" (none: "").
func series(f *dto.MetricFamily, pair string) *dto.Metric {
	for _, m := range f.GetMetric() {
		var got string
		for _, l := range m.GetLabel() {
			got = l.GetName() + "=" + l.GetValue()
		}
		if got == pair {
			return m
		}
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's count.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}
