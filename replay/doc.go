// Package replay turns a trace into a fetch plan for a cold start: pure
// planning, no I/O. Records of layers the image does not have are dropped
// (and counted), ranges read close together in time and space are joined
// when the gap between them is small, units are capped in size, ordered by
// first access, ranges already cached are skipped, and an optional byte
// budget cuts the plan. The trace is checked first against the image's
// layer sizes (trace.Validate, CheckLayers), so a plan is bounded by
// trace.MaxRecords and the bytes of the layers whatever the trace says.
//
// The FIFO policy reproduces overlaybd's own trace replay as a baseline:
// recorded order, no joining, reads of at most 1 MiB.
package replay
