package experiment

import (
	"context"
	"fmt"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/launch/timed"
	"github.com/dejavu-project/dejavu/reports"
)

// localDisk is the image's file system in a local file, for local starts.
type localDisk struct {
	path   string
	config v1.Config
}

// startLocal starts the program from the image's ext4 in a local file
// (reports.ModeLocal): the baseline that tells what FUSE, the loop device
// over it and decompression cost a warm start.
func (s *localStarter) startLocal(ctx context.Context, ref string, proxy *netshape.Proxy) (reports.Start, error) {
	if s.disk == nil {
		d, err := s.writeLocalDisk(ctx, ref, proxy)
		if err != nil {
			return reports.Start{}, err
		}
		s.disk = d
	}
	s.e.beforeStart(proxy)
	t, err := timed.StartLocal(ctx, s.disk.path, s.disk.config, s.e.Program)
	if err != nil {
		return reports.Start{}, err
	}
	return reports.Start{Mode: reports.ModeLocal, Seconds: t.Total.Seconds()}, nil
}

// writeLocalDisk writes the image's file system once, outside the
// measurement, from the warm cache (filled first if need be).
func (s *localStarter) writeLocalDisk(ctx context.Context, ref string, proxy *netshape.Proxy) (*localDisk, error) {
	warm := s.warmCache()
	if err := s.fillWarmCache(ctx, ref, warm, proxy); err != nil {
		return nil, err
	}
	if s.e.Progress != nil {
		fmt.Fprintln(s.e.Progress, "writing the image's file system to a local file for the local starts (not timed)")
	}
	opts := []backstore.Option{backstore.WithCacheDir(warm), backstore.WithRefOptions(s.e.RefOptions...), backstore.WithLogger(s.e.Log)}
	bs, err := backstore.Open(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	cfg := bs.Config().Config
	if err := bs.Close(); err != nil {
		return nil, err
	}
	d := &localDisk{path: filepath.Join(s.work, "local.ext4"), config: cfg}
	defer proxy.Unshaped()()
	if _, err := backstore.WriteRaw(ctx, ref, d.path, false, opts...); err != nil {
		return nil, fmt.Errorf("experiment: the local file system: %w", err)
	}
	return d, nil
}
