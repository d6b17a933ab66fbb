package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewRegistryHasRuntimeAndProcess(t *testing.T) {
	families, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		have[f.GetName()] = true
	}
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds", "process_resident_memory_bytes"} {
		if !have[name] {
			t.Errorf("no %s", name)
		}
	}
}

// failing is a collector whose every scrape fails.
type failing struct{ d *prometheus.Desc }

func (f failing) Describe(ch chan<- *prometheus.Desc) { ch <- f.d }
func (f failing) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(f.d, errors.New("source gone"))
}

// syncBuffer is a log sink the server's goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe: the text exposition at Path, a failing collector logged
// without hiding the others, and the server gone when its context ends.
func TestServe(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "An x."})
	c.Add(5)
	reg.MustRegister(c, failing{prometheus.NewDesc("broken", "Fails.", nil, nil)})
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	addr, err := Serve(ctx, "127.0.0.1:0", reg, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{"# TYPE x_total counter\nx_total 5\n", "\ngo_goroutines "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	if !strings.Contains(logs.String(), "source gone") {
		t.Errorf("the failing collector was not logged: %q", logs.String())
	}

	cancel()
	for range 100 {
		var r *http.Response
		if r, err = http.Get("http://" + addr + Path); err != nil {
			break
		}
		r.Body.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("still serving after the context ended")
	}
}

func TestServeBadAddress(t *testing.T) {
	_, err := Serve(t.Context(), "127.0.0.1:notaport", NewRegistry())
	if err == nil || !strings.HasPrefix(err.Error(), "metrics: ") {
		t.Fatalf("err %v", err)
	}
}
