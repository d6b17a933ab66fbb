package main

import (
	"strings"
	"testing"
)

// TestBadFlagValuesRefused: values that used to be taken silently (or to
// fail late, obscurely) are refused up front with the flag's name.
func TestBadFlagValuesRefused(t *testing.T) {
	for _, tc := range []struct {
		cmd  []string
		flag []string
		want string
	}{
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--fetch-attempts", "0"}, "--fetch-attempts 0"},
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--fetch-attempts", "-1"}, "--fetch-attempts -1"},
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--fetch-idle-timeout", "0s"}, "--fetch-idle-timeout 0s"},
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--prefetch-workers", "0"}, "--prefetch-workers 0"},
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--prefetch-batch", "-5"}, "--prefetch-batch -5"},
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--trace-wait", "-1s"}, "--trace-wait -1s"},
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--request-timeout", "-1s"}, "--request-timeout -1s"},
		{[]string{"run", "localhost:1/x:y"}, []string{"--timeout", "-1s"}, "--timeout -1s"},
		{[]string{"trace", "record", "localhost:1/x:y", "--out", t.TempDir() + "/t.djv"}, []string{"--timeout", "0s"}, "--timeout 0s"},
		{[]string{"trace", "record", "localhost:1/x:y", "--out", t.TempDir() + "/t.djv"}, []string{"--min-runs", "-1"}, "min-runs -1"},
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--cache-limit", "1"}, "--cache-limit 1: want 0 (no bound) or at least 12 MiB"},
		{[]string{"run", "localhost:1/x:y"}, []string{"--cache-limit", "1"}, "--cache-limit 1: want 0 (no bound) or at least 12 MiB"},
		{[]string{"trace", "record", "localhost:1/x:y", "--out", t.TempDir() + "/t.djv"}, []string{"--cache-limit", "1"}, "--cache-limit 1: want 0 (no bound) or at least 4 MiB"},
		{[]string{"snapshotter", "--root", t.TempDir(), "--address", t.TempDir() + "/s.sock"}, []string{"--cache-limit", "1"}, "--cache-limit 1: want 0 (no bound) or at least"},
		{[]string{"mount", "localhost:1/x:y", t.TempDir()}, []string{"--cache-limit", "20MiB", "--prefetch-workers", "16"}, "--cache-limit 20MiB: want 0 (no bound) or at least 36 MiB"},
		{[]string{"image", "build", t.TempDir(), "oci:" + t.TempDir() + ":x"}, []string{"--env", "NOEQUALS"}, `--env "NOEQUALS"`},
	} {
		args := append(tc.cmd, tc.flag...)
		err := dejavuErr(t, args...)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dejavu %s: %v; want it to name %q", strings.Join(args, " "), err, tc.want)
		}
	}
}
