package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// states lists the mounts recorded under the state directory.
func states(stateDir string) (map[string]state, error) {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]state{}
	for _, e := range entries {
		dir := filepath.Join(stateDir, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil {
			continue
		}
		var st state
		if json.Unmarshal(b, &st) == nil {
			out[dir] = st
		}
	}
	return out, nil
}

// Cleanup tears down every recorded mount whose process has died and
// returns how many it tore down.
func Cleanup(ctx context.Context, opts ...Option) (int, error) {
	cfg := newConfig(opts)
	all, err := states(cfg.stateDir)
	if err != nil {
		return 0, fmt.Errorf("device: %w", err)
	}
	n := 0
	var errs []error
	for dir, st := range all {
		if processAlive(st.PID) {
			continue
		}
		cfg.log.Info("device: cleaning up a mount whose process died", "target", st.Target, "pid", st.PID, "loop", st.Loop)
		if err := teardown(ctx, cfg, dir, st, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Unmount tears down the mount at target: it asks the process that owns it
// to stop (SIGTERM) and waits for it, or tears it down itself when that
// process is gone.
func Unmount(ctx context.Context, target string, opts ...Option) error {
	cfg := newConfig(opts)
	target, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	all, err := states(cfg.stateDir)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	for dir, st := range all {
		if st.Target != target {
			continue
		}
		if st.PID != os.Getpid() && processAlive(st.PID) {
			if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
				return fmt.Errorf("device: signal process %d that owns %s: %w", st.PID, target, err)
			}
			for {
				if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
					return nil
				}
				if !processAlive(st.PID) {
					break // it died before it finished: finish for it
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				return nil
			}
		}
		return teardown(ctx, cfg, dir, st, nil)
	}
	return fmt.Errorf("device: no dejavu mount at %s", target)
}
