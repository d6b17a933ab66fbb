package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/contrib/snapshotservice"
	"google.golang.org/grpc"
)

// Serve answers containerd's snapshots API for s on a unix socket at
// address until ctx ends. containerd reaches it as a proxy plugin.
func Serve(ctx context.Context, s *Snapshotter, address string) error {
	if err := os.MkdirAll(filepath.Dir(address), 0o711); err != nil {
		return fmt.Errorf("snapshotter: socket directory: %w", err)
	}
	// A socket left by a process that died would refuse the bind.
	if err := os.Remove(address); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshotter: %w", err)
	}
	ln, err := net.Listen("unix", address)
	if err != nil {
		return fmt.Errorf("snapshotter: %w", err)
	}
	srv := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(srv, snapshotservice.FromSnapshotter(s))
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			srv.GracefulStop()
		case <-done:
		}
	}()
	err = srv.Serve(ln)
	close(done)
	os.Remove(address)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}
