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

// stateFile is the name of a mount's state file in its directory.
const stateFile = "state.json"

// states lists the mounts recorded under the state directory, by their
// directories. Unreadable entries are skipped: a mount being set up has
// none yet.
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
		b, err := os.ReadFile(filepath.Join(dir, stateFile))
		if err != nil {
			continue
		}
		var st state
		if json.Unmarshal(b, &st) == nil && st.FUSEDir != "" {
			out[dir] = st
		}
	}
	return out, nil
}

// Cleanup tears down every recorded mount whose process has died (killed,
// crashed) and returns how many it tore down. Mounts of running processes
// are left alone.
func Cleanup(ctx context.Context, opts ...Option) (int, error) {
	cfg := newConfig(opts)
	all, err := states(cfg.stateDir)
	if err != nil {
		return 0, fmt.Errorf("device: cleanup: %w", err)
	}
	n := 0
	var errs []error
	for dir, st := range all {
		if processAlive(st) {
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

// Unmount tears down the mount at target made by an earlier Mount. A
// running owner is asked to stop (SIGTERM) and given until ctx ends to tear
// it down itself; an owner that is gone, or dies first, has it torn down
// here.
func Unmount(ctx context.Context, target string, opts ...Option) error {
	cfg := newConfig(opts)
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("device: unmount %s: %w", target, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	all, err := states(cfg.stateDir)
	if err != nil {
		return fmt.Errorf("device: unmount %s: %w", target, err)
	}
	for dir, st := range all {
		if st.Target != abs {
			continue
		}
		if st.PID != os.Getpid() && processAlive(st) {
			if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
				return fmt.Errorf("device: signal process %d that owns %s: %w", st.PID, abs, err)
			}
			cfg.log.Info("device: asked the owner to unmount", "target", abs, "pid", st.PID)
			for processAlive(st) {
				if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("device: process %d did not unmount %s: %w", st.PID, abs, ctx.Err())
				case <-time.After(50 * time.Millisecond):
				}
			}
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				return nil
			}
			// It died before it finished: finish for it.
		}
		return teardown(ctx, cfg, dir, st, nil)
	}
	return fmt.Errorf("device: no dejavu mount at %s", abs)
}
