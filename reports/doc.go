// Package reports holds the results of startup experiments (full, lazy,
// prefetch, fifo and warm starts of a workload through a shaped registry
// link) and renders them as tables, Markdown, JSON and a self-contained
// HTML page with charts.
package reports
