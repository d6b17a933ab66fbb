package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/metrics"
	"github.com/dejavu-project/dejavu/prefetch"
)

// Latency buckets, in seconds: from a cached read to a slow registry.
var latencyBuckets = []float64{0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metricsObserver turns backstore events into metrics.
type metricsObserver struct{ r *metrics.Registry }

func (m metricsObserver) DeviceRead(ev backstore.DeviceRead) {
	l := metrics.Labels{"cached": strconv.FormatBool(ev.Cached)}
	m.r.Add("dejavu_device_reads_total", "Reads of the virtual device, by whether the cache held all their bytes.", l, 1)
	m.r.Add("dejavu_device_read_bytes_total", "Bytes read from the virtual device.", l, float64(ev.Length))
	m.r.Observe("dejavu_device_read_seconds", "Latency of reads of the virtual device.", latencyBuckets, l, ev.Latency.Seconds())
}

func (m metricsObserver) BlobFetch(ev backstore.BlobFetch) {
	l := metrics.Labels{"cause": ev.Cause.String()}
	m.r.Add("dejavu_fetches_total", "Registry requests for blob bytes, by cause (demand, prefetch, open).", l, 1)
	m.r.Add("dejavu_fetch_bytes_total", "Blob bytes fetched from the registry, by cause.", l, float64(ev.Length))
	m.r.Add("dejavu_fetch_ranges_total", "Byte ranges fetched, several to a request where the registry allows, by cause.", l, float64(max(ev.Ranges, 1)))
	m.r.Observe("dejavu_fetch_seconds", "Latency of registry requests for blob bytes, by cause.", latencyBuckets, l, ev.Latency.Seconds())
	if ev.Err != nil {
		m.r.Add("dejavu_fetch_errors_total", "Registry requests that failed after their retries, by cause.", l, 1)
	}
}

// prefetchMetrics reports the outcomes of the running prefetch at scrape
// time.
func prefetchMetrics(r *metrics.Registry, eng *atomic.Pointer[prefetch.Engine]) {
	r.Func(func(emit func(name, help, typ string, labels metrics.Labels, v float64)) {
		e := eng.Load()
		if e == nil {
			return
		}
		rep := e.Report()
		const help = "Prefetch units by outcome: hit (fetched before the program asked), partial (the program waited on it), miss (the program asked first), waste, skipped, failed, pending."
		for _, o := range []struct {
			name string
			n    int
		}{{"hit", rep.Hit}, {"partial", rep.Partial}, {"miss", rep.Miss}, {"waste", rep.Waste}, {"skipped", rep.Skipped}, {"failed", rep.Failed}, {"pending", rep.Pending}} {
			emit("dejavu_prefetch_units", help, "gauge", metrics.Labels{"outcome": o.name}, float64(o.n))
		}
		emit("dejavu_prefetch_hit_bytes", "Bytes of prefetch units fetched before the program asked.", "gauge", nil, float64(rep.HitBytes))
		emit("dejavu_prefetch_wasted_bytes", "Bytes prefetched that the program has not read.", "gauge", nil, float64(rep.Wasted))
	})
}

// serveMetrics serves /metrics on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, r *metrics.Registry) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", r)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return ln.Addr().String(), nil
}
