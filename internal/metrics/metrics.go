// Package metrics keeps counters and histograms and serves them in the
// Prometheus text format. It is small on purpose: a handful of series,
// no global registry, nothing but the standard library.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Registry holds metric families and serves them.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
	order    []string
	funcs    []func(emit func(name, help, typ string, labels Labels, v float64))
}

// New returns an empty registry.
func New() *Registry { return &Registry{families: map[string]*family{}} }

// Labels are a series' label pairs.
type Labels map[string]string

type family struct {
	name, help, typ string
	buckets         []float64 // histograms
	series          map[string]*series
}

type series struct {
	labels Labels
	value  float64  // counter
	counts []uint64 // histogram, per bucket (not cumulative)
	sum    float64  // histogram
	n      uint64   // histogram
}

// Add adds v to a counter.
func (r *Registry) Add(name, help string, labels Labels, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.get(name, help, "counter", nil, labels).value += v
}

// Observe records v in a histogram with the given upper bucket bounds.
func (r *Registry) Observe(name, help string, buckets []float64, labels Labels, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.get(name, help, "histogram", buckets, labels)
	i := sort.SearchFloat64s(r.families[name].buckets, v)
	if i < len(s.counts) {
		s.counts[i]++
	}
	s.sum += v
	s.n++
}

// Func registers a function that emits values computed at scrape time
// (gauges, or counters kept elsewhere).
func (r *Registry) Func(f func(emit func(name, help, typ string, labels Labels, v float64))) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.funcs = append(r.funcs, f)
}

func (r *Registry) get(name, help, typ string, buckets []float64, labels Labels) *series {
	f, ok := r.families[name]
	if !ok {
		f = &family{name: name, help: help, typ: typ, buckets: slices.Sorted(slices.Values(buckets)), series: map[string]*series{}}
		r.families[name] = f
		r.order = append(r.order, name)
	}
	key := labelString(labels, "", "")
	s, ok := f.series[key]
	if !ok {
		s = &series{labels: labels}
		if typ == "histogram" {
			s.counts = make([]uint64, len(f.buckets))
		}
		f.series[key] = s
	}
	return s
}

// Write writes every series in the text exposition format.
func (r *Registry) Write(w io.Writer) error {
	r.mu.Lock()
	var b strings.Builder
	for _, name := range r.order {
		f := r.families[name]
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, f.help, name, f.typ)
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s := f.series[k]
			if f.typ == "counter" {
				fmt.Fprintf(&b, "%s%s %s\n", name, k, num(s.value))
				continue
			}
			var cum uint64
			for i, le := range f.buckets {
				cum += s.counts[i]
				fmt.Fprintf(&b, "%s_bucket%s %d\n", name, labelString(s.labels, "le", num(le)), cum)
			}
			fmt.Fprintf(&b, "%s_bucket%s %d\n%s_sum%s %s\n%s_count%s %d\n", name, labelString(s.labels, "le", "+Inf"), s.n,
				name, k, num(s.sum), name, k, s.n)
		}
	}
	funcs := slices.Clone(r.funcs)
	r.mu.Unlock()
	seen := map[string]bool{}
	for _, fn := range funcs {
		fn(func(name, help, typ string, labels Labels, v float64) {
			if !seen[name] {
				seen[name] = true
				fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
			}
			fmt.Fprintf(&b, "%s%s %s\n", name, labelString(labels, "", ""), num(v))
		})
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ServeHTTP serves the metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.Write(w)
}

func labelString(l Labels, extraK, extraV string) string {
	keys := make([]string, 0, len(l)+1)
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.Quote(l[k]))
	}
	if extraK != "" {
		parts = append(parts, extraK+"="+strconv.Quote(extraV))
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func num(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
