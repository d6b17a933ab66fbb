package snapshotter_test

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/testsuite"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/snapshotter"
)

// TestContainerdSuite runs containerd's own snapshotter test suite on the
// path that ordinary (not overlaybd) layers take: real directories and
// real overlay mounts. The suite knows the snapshotter as "overlayfs": that
// name tells it that renaming a directory of a lower layer is not expected
// to work (overlayfs without redirect_dir), as for containerd's own.
func TestContainerdSuite(t *testing.T) {
	testenv.RequireRoot(t)
	testsuite.SnapshotterSuite(t, "overlayfs", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		s, err := snapshotter.New(ctx, root)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	})
}
