package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/internal/testutil/distreg"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// startMount runs "dejavu mount" until the returned stop is called.
func startMount(t *testing.T, args ...string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out mountOutput
	done := make(chan error, 1)
	root := newRootCmd()
	root.SetArgs(append([]string{"mount"}, args...))
	root.SetOut(&out)
	root.SetErr(&out)
	go func() { done <- root.ExecuteContext(ctx) }()
	target := args[1]
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("dejavu mount exited: %v\n%s", err, out.String())
		default:
		}
		// The file system shows in mountinfo before mount(8) returns;
		// the command says "mounted" once it has set everything up.
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), " "+target+" ") && strings.Contains(out.String(), "mounted ") {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("mount did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() error {
		cancel()
		return <-done
	}
}

// mountOutput is what a mount running in another goroutine prints.
type mountOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *mountOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *mountOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// TestMountCLI: build an image into a registry, mount it lazily, see the
// tree; mount again from the warm cache with no registry request at all;
// umount from another "process" (the command).
func TestMountCLI(t *testing.T) {
	testenv.RequireLoop(t)
	testenv.RequireCommands(t, "mke2fs")
	testenv.RequireFUSE(t)
	src := t.TempDir()
	treetest.Generate(t, src, treetest.Spec{Files: 500, MaxSmall: 40 << 10, Big: 3 << 20, Seed: 9})
	var requests testreg.Counter
	ref := testreg.Start(t, testreg.WithCounter(&requests)).Ref("app:v1")
	dejavu(t, "image", "build", src, ref)
	cache, state := t.TempDir(), t.TempDir()
	target := filepath.Join(t.TempDir(), "mnt")
	flags := []string{"--cache", cache, "--state-dir", state}

	requests.Reset()
	stop := startMount(t, append([]string{ref, target}, flags...)...)
	treetest.Compare(t, src, target)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cold := requests.Requests()
	if cold == 0 {
		t.Fatal("a cold mount made no registry request")
	}

	requests.Reset()
	stop = startMount(t, append([]string{ref, target}, flags...)...)
	treetest.Compare(t, src, target)
	if n := requests.Requests(); n != 0 {
		t.Errorf("warm mount and full read made %d registry requests, want 0", n)
	}
	dejavu(t, "umount", target, "--state-dir", state)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), target) || strings.Contains(string(mi), state) {
		t.Fatalf("mounts left:\n%s", mi)
	}
	t.Logf("cold mount + full read: %d registry requests; warm: 0", cold)
}

// TestMountFromDistribution: a built image with a few thousand files, served
// by the distribution registry, mounted lazily: every file equals its
// source. Then again behind a link where 20% of range GETs fail (5xx,
// resets, stalls).
func TestMountFromDistribution(t *testing.T) {
	testenv.RequireLoop(t)
	testenv.RequireCommands(t, "mke2fs")
	testenv.RequireFUSE(t)
	src := t.TempDir()
	treetest.Generate(t, src, treetest.Spec{Files: 3000, MaxSmall: 32 << 10, Big: 8 << 20, Seed: 21})
	reg := distreg.Start(t)
	ref := reg + "/many/files:v1"
	dejavu(t, "image", "build", src, ref)

	target := filepath.Join(t.TempDir(), "mnt")
	stop := startMount(t, ref, target, "--cache", t.TempDir(), "--state-dir", t.TempDir())
	treetest.Compare(t, src, target)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	p, err := netshape.Start("http://"+reg, netshape.WithFaults(netshape.Faults{
		Rate: 0.2, Kinds: []netshape.FaultKind{netshape.Fault5xx, netshape.FaultReset, netshape.FaultStall}, Seed: 5, StallFor: 30 * time.Second,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stop = startMount(t, p.Addr()+"/many/files:v1", target, "--cache", t.TempDir(), "--state-dir", t.TempDir(), "--fetch-idle-timeout", "500ms")
	treetest.Compare(t, src, target)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	t.Logf("faulty link: %d requests, faults %v", s.Requests, s.Faults)
	if s.Faults["5xx"]+s.Faults["reset"]+s.Faults["stall"] == 0 {
		t.Fatal("no fault injected")
	}
}

// TestRunHelloWorld: the real overlaybd hello-world image, lazily mounted
// from a registry, started in its namespaces; it prints its greeting and the
// start is timed.
func TestRunHelloWorld(t *testing.T) {
	testenv.RequireLoop(t)
	testenv.RequireFUSE(t)
	ref := testreg.Start(t).HelloWorld(t, "hello:obd")
	out, errOut := dejavu(t, "run", ref, "--cache", t.TempDir(), "--state-dir", t.TempDir())
	if !strings.Contains(out, "Hello from Docker!") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
	if !strings.Contains(errOut, "ready in ") {
		t.Fatalf("no timing printed:\n%s", errOut)
	}
	t.Log(strings.TrimSpace(errOut))
}
