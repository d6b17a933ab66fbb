package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dejavu-project/dejavu/internal/metrics"
	"github.com/dejavu-project/dejavu/lazymount"
)

// withMetrics serves a fresh registry on addr until ctx ends and returns
// the option that makes mounts report into it.
func withMetrics(ctx context.Context, addr string) (lazymount.Option, error) {
	reg := metrics.NewRegistry()
	m, err := lazymount.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	addr, err = metrics.Serve(ctx, addr, reg, metrics.WithLogger(slog.Default()))
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	slog.Info("serving metrics", "url", "http://"+addr+metrics.Path)
	return lazymount.WithMetrics(m), nil
}
