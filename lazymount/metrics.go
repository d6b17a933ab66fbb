package lazymount

import (
	"strconv"
	"sync"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/metrics"
	"github.com/dejavu-project/dejavu/prefetch"
)

// Latency buckets, in seconds: from a cached read to a slow registry.
var latencyBuckets = []float64{0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics collects what the mounts given WithMetrics do, in Prometheus
// series: fetches by cause, device reads by whether the cache held them,
// and prefetch outcomes summed over every mount, finished or running.
type Metrics struct {
	r *metrics.Registry

	mu      sync.Mutex
	running map[*prefetch.Engine]bool
	ended   prefetch.Report // sum of the engines that stopped
}

// NewMetrics reports into r.
func NewMetrics(r *metrics.Registry) *Metrics {
	m := &Metrics{r: r, running: map[*prefetch.Engine]bool{}}
	r.Func(m.emit)
	return m
}

func (m *Metrics) add(e *prefetch.Engine) {
	m.mu.Lock()
	m.running[e] = true
	m.mu.Unlock()
}

func (m *Metrics) done(e *prefetch.Engine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running[e] {
		delete(m.running, e)
		sum(&m.ended, e.Report())
	}
}

func sum(to *prefetch.Report, r prefetch.Report) {
	to.Units += r.Units
	to.Bytes += r.Bytes
	to.Hit += r.Hit
	to.Partial += r.Partial
	to.Miss += r.Miss
	to.Waste += r.Waste
	to.Skipped += r.Skipped
	to.Failed += r.Failed
	to.Pending += r.Pending
	to.HitBytes += r.HitBytes
	to.Wasted += r.Wasted
}

// emit reports the prefetch outcomes at scrape time.
func (m *Metrics) emit(emit func(name, help, typ string, labels metrics.Labels, v float64)) {
	m.mu.Lock()
	rep := m.ended
	for e := range m.running {
		sum(&rep, e.Report())
	}
	n := len(m.running)
	m.mu.Unlock()
	const help = "Prefetch units by outcome: hit (fetched before the program asked), partial (the program waited on it), miss (the program asked first), waste, skipped, failed, pending."
	for _, o := range []struct {
		name string
		n    int
	}{{"hit", rep.Hit}, {"partial", rep.Partial}, {"miss", rep.Miss}, {"waste", rep.Waste}, {"skipped", rep.Skipped}, {"failed", rep.Failed}, {"pending", rep.Pending}} {
		emit("dejavu_prefetch_units", help, "gauge", metrics.Labels{"outcome": o.name}, float64(o.n))
	}
	emit("dejavu_prefetch_hit_bytes", "Bytes of prefetch units fetched before the program asked.", "gauge", nil, float64(rep.HitBytes))
	emit("dejavu_prefetch_wasted_bytes", "Bytes prefetched that the program has not read.", "gauge", nil, float64(rep.Wasted))
	emit("dejavu_prefetch_running", "Prefetches running now.", "gauge", nil, float64(n))
}

func (m *Metrics) observer() backstore.Observer { return observer{m.r} }

// observer turns backstore events into metrics.
type observer struct{ r *metrics.Registry }

func (m observer) DeviceRead(ev backstore.DeviceRead) {
	l := metrics.Labels{"cached": strconv.FormatBool(ev.Cached)}
	m.r.Add("dejavu_device_reads_total", "Reads of the virtual device, by whether the cache held all their bytes.", l, 1)
	m.r.Add("dejavu_device_read_bytes_total", "Bytes read from the virtual device.", l, float64(ev.Length))
	m.r.Observe("dejavu_device_read_seconds", "Latency of reads of the virtual device.", latencyBuckets, l, ev.Latency.Seconds())
}

func (m observer) BlobFetch(ev backstore.BlobFetch) {
	l := metrics.Labels{"cause": ev.Cause.String()}
	m.r.Add("dejavu_fetches_total", "Registry requests for blob bytes, by cause (demand, prefetch, open).", l, 1)
	m.r.Add("dejavu_fetch_bytes_total", "Blob bytes fetched from the registry, by cause.", l, float64(ev.Length))
	m.r.Add("dejavu_fetch_ranges_total", "Byte ranges fetched, several to a request where the registry allows, by cause.", l, float64(max(ev.Ranges, 1)))
	m.r.Observe("dejavu_fetch_seconds", "Latency of registry requests for blob bytes, by cause.", latencyBuckets, l, ev.Latency.Seconds())
	if ev.Err != nil {
		m.r.Add("dejavu_fetch_errors_total", "Registry requests that failed after their retries, by cause.", l, 1)
	}
}
