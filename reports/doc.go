// Package reports keeps the results of startup experiments and renders
// them.
//
// Results hold every start of an experiment (package experiment makes
// them) by mode (full, lazy, prefetch, fifo, warm, local) and runtime; Summarize
// derives per-mode medians, spreads, speedups and the physical limit.
// They render as text tables, Markdown, JSON (read back by Read, also from
// older versions' files) and a self-contained HTML page with charts.
package reports
