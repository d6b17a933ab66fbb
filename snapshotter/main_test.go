package snapshotter_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/snapshotter"
)

// The crash test needs a snapshotter in a process of its own, to kill it:
// with these set, the test binary is that process.
const (
	serveSockEnv = "DEJAVU_TEST_SNAPSHOTTER_SOCK"
	serveRootEnv = "DEJAVU_TEST_SNAPSHOTTER_ROOT"
)

func TestMain(m *testing.M) {
	if sock := os.Getenv(serveSockEnv); sock != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err := serve(ctx, sock, os.Getenv(serveRootEnv), nil)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serve runs a snapshotter on sock until ctx ends, as `dejavu snapshotter`
// does: its blob cache under root, with sopts, every image mount given opts.
func serve(ctx context.Context, sock, root string, sopts []snapshotter.Option, opts ...lazymount.Option) error {
	opts = append([]lazymount.Option{lazymount.WithBackstoreOptions(backstore.WithCacheDir(filepath.Join(root, "cache")))}, opts...)
	sn, err := snapshotter.New(ctx, root, append([]snapshotter.Option{snapshotter.WithMountOptions(opts...)}, sopts...)...)
	if err != nil {
		return err
	}
	err = snapshotter.Serve(ctx, sn, sock)
	if cerr := sn.Close(); err == nil {
		err = cerr
	}
	return err
}
