package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/internal/testutil/tracetest"
)

// runTimed runs "dejavu run" as a process of its own and returns how long
// the command took, the time to ready it printed, and its stderr.
func runTimed(t *testing.T, args ...string) (took, ready time.Duration, stderr string) {
	t.Helper()
	begin := time.Now()
	cmd, errOut := command(t, append([]string{"run"}, args...)...)
	st := exitWithin(t, cmd, 2*time.Minute)
	took = time.Since(begin)
	if !st.Success() {
		t.Fatalf("dejavu run %s: %v\n%s", strings.Join(args, " "), st, errOut)
	}
	m := regexp.MustCompile(`ready in (\S+) \(`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no time to ready printed:\n%s", errOut)
	}
	ready, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("time to ready %q: %v", m[1], err)
	}
	return took, ready, errOut.String()
}

// TestRunHostileTraceAttached: the real "dejavu run" of the real
// hello-world image with issue 13's 62 M-record trace attached as a
// referrer (ready after 29.6 s instead of ~15 ms, at 10.5 GB, before the
// fix) is ready within --trace-wait of a start with no trace attached, and
// its log says the trace was refused.
func TestRunHostileTraceAttached(t *testing.T) {
	testenv.RequireLazyMount(t)
	ref := testreg.Start(t).HelloWorld(t, "hello:obd")
	const wait = 2 * time.Second
	run := func() (time.Duration, time.Duration, string) {
		return runTimed(t, ref, "--trace", "auto", "--trace-wait", wait.String(), "--cache", t.TempDir(), "--state-dir", t.TempDir())
	}
	cleanTook, cleanReady, _ := run()
	tracetest.PushUnchecked(t, ref, tracetest.ManyRecords(t, 62_000_000), nil)
	took, ready, log := run()
	t.Logf("no trace: ready in %v (command %v); hostile trace: ready in %v (command %v); its log:\n%s", cleanReady, cleanTook, ready, took, log)
	if ready > cleanReady+wait {
		t.Errorf("ready in %v with the hostile trace, want within the trace wait (%v) of %v", ready, wait, cleanReady)
	}
	if took > cleanTook+wait {
		t.Errorf("the command took %v with the hostile trace, want within the trace wait (%v) of %v", took, wait, cleanTook)
	}
	if !strings.Contains(log, "trace refused") || !strings.Contains(log, "records claims 248000000 entries") {
		t.Errorf("the log does not say the trace was refused:\n%s", log)
	}
}
