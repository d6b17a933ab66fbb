package lazymount

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/prefetch"
)

// Latency buckets, in seconds: from a cached read to a slow registry.
var latencyBuckets = []float64{0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics collects what the mounts given WithMetrics do, in Prometheus
// series: fetches by cause, device reads by whether the cache held them,
// and prefetch outcomes summed over every mount, finished or running.
type Metrics struct {
	reads, readBytes                      *prometheus.CounterVec
	readSeconds                           *prometheus.HistogramVec
	fetches, fetchBytes, ranges, failures *prometheus.CounterVec
	fetchSeconds                          *prometheus.HistogramVec
	prefetch                              *prefetchCollector
}

// NewMetrics registers the mounts' series on r. It fails if r already
// holds them (a second Metrics on one registry).
func NewMetrics(r prometheus.Registerer) (*Metrics, error) {
	byCached, byCause := []string{"cached"}, []string{"cause"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, labels []string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels)
	}
	m := &Metrics{
		reads:        counter("dejavu_device_reads_total", "Reads of the virtual device, by whether the cache held all their bytes.", byCached),
		readBytes:    counter("dejavu_device_read_bytes_total", "Bytes read from the virtual device.", byCached),
		readSeconds:  histogram("dejavu_device_read_seconds", "Latency of reads of the virtual device.", byCached),
		fetches:      counter("dejavu_fetches_total", "Registry requests for blob bytes, by cause (demand, prefetch, open).", byCause),
		fetchBytes:   counter("dejavu_fetch_bytes_total", "Blob bytes fetched from the registry, by cause.", byCause),
		ranges:       counter("dejavu_fetch_ranges_total", "Byte ranges fetched, several to a request where the registry allows, by cause.", byCause),
		failures:     counter("dejavu_fetch_errors_total", "Registry requests that failed after their retries, by cause.", byCause),
		fetchSeconds: histogram("dejavu_fetch_seconds", "Latency of registry requests for blob bytes, by cause.", byCause),
		prefetch:     newPrefetchCollector(),
	}
	for _, c := range []prometheus.Collector{m.reads, m.readBytes, m.readSeconds, m.fetches, m.fetchBytes, m.ranges, m.failures, m.fetchSeconds, m.prefetch} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("lazymount: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) add(e *prefetch.Engine)  { m.prefetch.add(e) }
func (m *Metrics) done(e *prefetch.Engine) { m.prefetch.done(e) }

func (m *Metrics) observer() backstore.Observer { return observer{m} }

// observer turns backstore events into metrics.
type observer struct{ m *Metrics }

func (o observer) DeviceRead(ev backstore.DeviceRead) {
	l := strconv.FormatBool(ev.Cached)
	o.m.reads.WithLabelValues(l).Inc()
	o.m.readBytes.WithLabelValues(l).Add(float64(ev.Length))
	o.m.readSeconds.WithLabelValues(l).Observe(ev.Latency.Seconds())
}

func (o observer) BlobFetch(ev backstore.BlobFetch) {
	l := ev.Cause.String()
	o.m.fetches.WithLabelValues(l).Inc()
	o.m.fetchBytes.WithLabelValues(l).Add(float64(ev.Length))
	o.m.ranges.WithLabelValues(l).Add(float64(max(ev.Ranges, 1)))
	o.m.fetchSeconds.WithLabelValues(l).Observe(ev.Latency.Seconds())
	if ev.Err != nil {
		o.m.failures.WithLabelValues(l).Inc()
	}
}

// prefetchCollector reports prefetch outcomes at scrape time: an engine's
// report changes as it runs, so the sum is taken when asked, over the
// engines running now and those that stopped.
type prefetchCollector struct {
	units, hitBytes, wasted, running *prometheus.Desc

	mu      sync.Mutex
	engines map[*prefetch.Engine]bool
	ended   prefetch.Report // sum of the engines that stopped
}

func newPrefetchCollector() *prefetchCollector {
	return &prefetchCollector{
		units: prometheus.NewDesc("dejavu_prefetch_units",
			"Prefetch units by outcome: hit (fetched before the program asked), partial (the program waited on it), miss (the program asked first), waste, skipped, failed, pending.",
			[]string{"outcome"}, nil),
		hitBytes: prometheus.NewDesc("dejavu_prefetch_hit_bytes", "Bytes of prefetch units fetched before the program asked.", nil, nil),
		wasted:   prometheus.NewDesc("dejavu_prefetch_wasted_bytes", "Bytes prefetched that the program has not read.", nil, nil),
		running:  prometheus.NewDesc("dejavu_prefetch_running", "Prefetches running now.", nil, nil),
		engines:  map[*prefetch.Engine]bool{},
	}
}

func (c *prefetchCollector) add(e *prefetch.Engine) {
	c.mu.Lock()
	c.engines[e] = true
	c.mu.Unlock()
}

func (c *prefetchCollector) done(e *prefetch.Engine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.engines[e] {
		delete(c.engines, e)
		sum(&c.ended, e.Report())
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

// Describe implements prometheus.Collector.
func (c *prefetchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.units, c.hitBytes, c.wasted, c.running} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *prefetchCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	rep := c.ended
	for e := range c.engines {
		sum(&rep, e.Report())
	}
	n := len(c.engines)
	c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, o := range []struct {
		name string
		n    int
	}{{"hit", rep.Hit}, {"partial", rep.Partial}, {"miss", rep.Miss}, {"waste", rep.Waste}, {"skipped", rep.Skipped}, {"failed", rep.Failed}, {"pending", rep.Pending}} {
		gauge(c.units, float64(o.n), o.name)
	}
	gauge(c.hitBytes, float64(rep.HitBytes))
	gauge(c.wasted, float64(rep.Wasted))
	gauge(c.running, float64(n))
}
