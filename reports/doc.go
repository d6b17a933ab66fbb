// Package reports runs startup experiments and renders their results.
//
// An experiment starts a workload again and again through a shaped link to
// its registry (round-trip delay, bandwidth), alternating modes run by run:
// full, lazy, prefetch, fifo and warm starts in this process, or lazy,
// prefetch and warm starts through containerd and the dejavu snapshotter.
// Its results (every start, per-mode summaries, the physical limit) render
// as tables, Markdown, JSON and a self-contained HTML page with charts.
package reports
