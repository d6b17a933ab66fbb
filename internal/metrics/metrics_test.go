package metrics

import (
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := New()
	r.Add("x_total", "An x.", Labels{"cause": "demand"}, 2)
	r.Add("x_total", "An x.", Labels{"cause": "demand"}, 3)
	r.Add("x_total", "An x.", Labels{"cause": "prefetch"}, 1)
	for _, v := range []float64{0.001, 0.02, 0.02, 7} {
		r.Observe("lat_seconds", "Latency.", []float64{0.01, 0.1, 1}, Labels{"cause": "demand"}, v)
	}
	r.Func(func(emit func(name, help, typ string, labels Labels, v float64)) {
		emit("units", "Units.", "gauge", Labels{"outcome": "hit"}, 4)
	})
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP x_total An x.
# TYPE x_total counter
x_total{cause="demand"} 5
x_total{cause="prefetch"} 1
# HELP lat_seconds Latency.
# TYPE lat_seconds histogram
lat_seconds_bucket{cause="demand",le="0.01"} 1
lat_seconds_bucket{cause="demand",le="0.1"} 3
lat_seconds_bucket{cause="demand",le="1"} 3
lat_seconds_bucket{cause="demand",le="+Inf"} 4
lat_seconds_sum{cause="demand"} 7.041
lat_seconds_count{cause="demand"} 4
# HELP units Units.
# TYPE units gauge
units{outcome="hit"} 4
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
