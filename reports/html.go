package reports

import (
	"cmp"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
)

// HTML writes a self-contained page: the summary table, a bar per mode
// (median, with p90 and the min–max spread) and, for the median start of
// each mode, a timeline of its demand and prefetch fetches. It loads
// nothing from the network: styles and charts are inline.
func HTML(w io.Writer, r *Results) error {
	var timelines []template.HTML
	for _, m := range r.Summary {
		if s := medianStart(r.Starts, m); s != nil && len(s.Timeline) > 0 {
			timelines = append(timelines, template.HTML(timelineSVG(s)))
		}
	}
	return page.Execute(w, struct {
		R         *Results
		Rows      [][]string
		Limit     string
		Mbit      string
		Bars      template.HTML
		Timelines []template.HTML
		Breakdown []string
	}{r, rows(r), limitLine(r), r.mbit(), template.HTML(barsSVG(r)), timelines, breakdownLines(r)})
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>dejavu startup report: {{.R.Image}}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
svg { display: block; margin: 1em 0; }
.legend span { display: inline-block; margin-right: 1.5em; }
.sw { display: inline-block; width: 1em; height: 0.8em; margin-right: 0.3em; }
</style></head><body>
<h1>Startup latency: {{.R.Image}}</h1>
<p>{{.R.Runs}} runs per mode, round trip {{.R.RTT}}, bandwidth {{.Mbit}} Mbit/s, ready: {{.R.Ready}}{{if .R.Command}}, command: <code>{{range .R.Command}}{{.}} {{end}}</code>{{end}}.</p>
<h2>Summary</h2>
<table>{{range $i, $row := .Rows}}<tr>{{range $row}}{{if eq $i 0}}<th>{{.}}</th>{{else}}<td>{{.}}</td>{{end}}{{end}}</tr>
{{end}}</table>
<p>{{.Limit}}</p>
{{range .Breakdown}}<p>{{.}}</p>
{{end}}<h2>Time to ready</h2>
<p>Bars are medians; the thin line spans min to max, the tick marks p90; the dashed line is the physical limit.</p>
{{.Bars}}
<h2>Fetches during one start of each mode</h2>
<p class="legend"><span><i class="sw" style="background:#e4572e"></i>demand</span><span><i class="sw" style="background:#2e86ab"></i>prefetch</span><span><i class="sw" style="background:#999"></i>open (layer indexes)</span><span><i class="sw" style="background:#9b72cf"></i>registry (manifests, referrers, configs, traces)</span>each bar is one request, from sent to answered; the black line is ready.</p>
{{range .Timelines}}{{.}}{{end}}
</body></html>
`))

// medianStart picks the start of a mode whose time is the mode's median.
func medianStart(starts []Start, m ModeSummary) *Start {
	var best *Start
	for i := range starts {
		s := &starts[i]
		if s.Mode == m.Mode && (best == nil || math.Abs(s.Seconds-m.MedianSeconds) < math.Abs(best.Seconds-m.MedianSeconds)) {
			best = s
		}
	}
	return best
}

const (
	chartW  = 900
	labelW  = 90
	rowH    = 28
	axisPad = 30
)

func barsSVG(r *Results) string {
	var top float64
	for _, m := range r.Summary {
		top = max(top, m.MaxSeconds)
	}
	top = niceCeil(max(top, r.PhysicalLimitSeconds))
	x := func(s float64) float64 { return labelW + (chartW-labelW-70)*s/top }
	h := len(r.Summary)*rowH + axisPad
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="time to ready per mode">`, chartW, h)
	for i, m := range r.Summary {
		y := float64(i*rowH) + 4
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="13">%s</text>`, 4, y+15, html.EscapeString(string(m.Mode)))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="18" fill="%s"><title>%s: median %.3fs</title></rect>`,
			x(0), y+2, x(m.MedianSeconds)-x(0), modeColor(m.Mode), html.EscapeString(string(m.Mode)), m.MedianSeconds)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>`, x(m.MinSeconds), x(m.MaxSeconds), y+11, y+11)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222" stroke-width="2"/>`, x(m.P90Seconds), x(m.P90Seconds), y+4, y+18)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11">%.2fs</text>`, x(m.MaxSeconds)+4, y+15, m.MedianSeconds)
	}
	if r.PhysicalLimitSeconds > 0 {
		lx := x(r.PhysicalLimitSeconds)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="0" y2="%d" stroke="#555" stroke-dasharray="4 3"/>`, lx, lx, h-axisPad)
	}
	axis(&b, x, top, h-axisPad)
	b.WriteString(`</svg>`)
	return b.String()
}

func timelineSVG(s *Start) string {
	end := s.Seconds
	for _, f := range s.Timeline {
		end = max(end, f.At+f.Took)
	}
	top := niceCeil(end)
	x := func(t float64) float64 { return labelW + (chartW-labelW-20)*t/top }
	// Overlapping fetches go to different lanes.
	fetches := slices.Clone(s.Timeline)
	slices.SortFunc(fetches, func(a, b Fetch) int { return cmp.Compare(a.At, b.At) })
	var laneEnd []float64
	lanes := make([]int, len(fetches))
	for i, f := range fetches {
		l := slices.IndexFunc(laneEnd, func(e float64) bool { return e <= f.At })
		if l < 0 {
			l = len(laneEnd)
			laneEnd = append(laneEnd, 0)
		}
		laneEnd[l] = f.At + f.Took
		lanes[i] = l
	}
	const laneH = 6
	h := max(len(laneEnd), 1)*laneH + 24 + axisPad
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="fetches of one %s start">`,
		chartW, h, html.EscapeString(string(s.Mode)))
	fmt.Fprintf(&b, `<text x="4" y="16" font-size="13">%s (run %d, %.2fs, %d requests)</text>`, html.EscapeString(string(s.Mode)), s.Run, s.Seconds, s.Requests)
	for i, f := range fetches {
		y := 24 + lanes[i]*laneH
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s in %d ranges, %.0f ms</title></rect>`,
			x(f.At), y, max(x(f.At+f.Took)-x(f.At), 1), laneH-1, causeColor(f.Cause),
			html.EscapeString(f.Cause), HumanBytes(f.Bytes), f.Ranges, f.Took*1000)
	}
	rx := x(s.Seconds)
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="20" y2="%d" stroke="#000" stroke-width="2"/>`, rx, rx, h-axisPad)
	axis(&b, x, top, h-axisPad)
	b.WriteString(`</svg>`)
	return b.String()
}

func axis(b *strings.Builder, x func(float64) float64, top float64, y int) {
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#888"/>`, x(0), x(top), y, y)
	step := top / 5
	for i := 0; i <= 5; i++ {
		t := step * float64(i)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#888"/><text x="%.1f" y="%d" font-size="11" text-anchor="middle">%gs</text>`,
			x(t), x(t), y, y+4, x(t), y+16, math.Round(t*100)/100)
	}
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func causeColor(c string) string {
	switch c {
	case "demand":
		return "#e4572e"
	case "prefetch":
		return "#2e86ab"
	case CauseRegistry:
		return "#9b72cf"
	}
	return "#999"
}

func modeColor(m Mode) string {
	switch m {
	case ModePrefetch:
		return "#2e86ab"
	case ModeFIFO:
		return "#76b041"
	case ModeLazy:
		return "#e4572e"
	case ModeWarm:
		return "#f3a712"
	}
	return "#8e8e8e"
}
