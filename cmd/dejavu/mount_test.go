package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"

	"github.com/dejavu-project/dejavu/internal/bench/netshape"
	"github.com/dejavu-project/dejavu/internal/registry"
	"github.com/dejavu-project/dejavu/internal/testutil/distreg"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// countedRegistry is an in-process registry that counts requests.
func countedRegistry(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	h := ggcr.New(ggcr.WithReferrersSupport(true))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &n
}

// startMount runs "dejavu mount" until the returned stop is called.
func startMount(t *testing.T, args ...string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
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
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), " "+target+" ") {
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

// TestMountCLI: build an image into a registry, mount it lazily, see the
// tree; mount again from the warm cache with no registry request at all;
// umount from another "process" (the command).
func TestMountCLI(t *testing.T) {
	testenv.RequireLoop(t)
	testenv.RequireCommands(t, "mke2fs")
	testenv.RequireFUSE(t)
	src := t.TempDir()
	treetest.Generate(t, src, treetest.Spec{Files: 500, MaxSmall: 40 << 10, Big: 3 << 20, Seed: 9})
	reg, requests := countedRegistry(t)
	ref := reg + "/app:v1"
	dejavu(t, "image", "build", src, ref)
	cache, state := t.TempDir(), t.TempDir()
	target := filepath.Join(t.TempDir(), "mnt")
	flags := []string{"--cache", cache, "--state-dir", state}

	requests.Store(0)
	stop := startMount(t, append([]string{ref, target}, flags...)...)
	treetest.Compare(t, src, target)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cold := requests.Load()
	if cold == 0 {
		t.Fatal("a cold mount made no registry request")
	}

	requests.Store(0)
	stop = startMount(t, append([]string{ref, target}, flags...)...)
	treetest.Compare(t, src, target)
	if n := requests.Load(); n != 0 {
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
	layout := filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout")
	srv, err := registry.Start("127.0.0.1:0", t.TempDir()) // the embedded registry
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	reg := srv.Addr
	dejavu(t, "image", "copy", "oci:"+layout+":amd64-converted", reg+"/hello:obd")
	out, errOut := dejavu(t, "run", reg+"/hello:obd", "--cache", t.TempDir(), "--state-dir", t.TempDir())
	if !strings.Contains(out, "Hello from Docker!") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
	if !strings.Contains(errOut, "ready in ") {
		t.Fatalf("no timing printed:\n%s", errOut)
	}
	t.Log(strings.TrimSpace(errOut))
}
