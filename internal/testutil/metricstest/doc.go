// Package metricstest reads the Prometheus text exposition that dejavu's
// metrics servers answer, for tests that check what was counted.
package metricstest
