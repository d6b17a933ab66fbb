package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/registry"
	"github.com/dejavu-project/dejavu/internal/testenv"
	"github.com/dejavu-project/dejavu/internal/treetest"
)

// TestSlowTraceLookupDoesNotHoldTheStart: a registry that never answers
// the referrers query (a fake fault in front of the real registry: no real
// registry can be told to hang on one API) must not hold the mount longer
// than --trace-wait; the image is then served without prefetch.
func TestSlowTraceLookupDoesNotHoldTheStart(t *testing.T) {
	testenv.RequireLoop(t)
	testenv.RequireCommands(t, "mke2fs")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Skip(t, "test needs /dev/fuse")
	}
	srv, err := registry.Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tree := busyboxTree(t)
	ref := srv.Addr + "/bb:v1"
	dejavu(t, "image", "build", tree, ref, "--cmd", "/bin/sh", "--cmd", "-c", "--cmd", "cat /data/*/* > /dev/null")
	file := filepath.Join(t.TempDir(), "bb.djv")
	dejavu(t, "trace", "record", ref, "-o", file, "--state-dir", t.TempDir())
	dejavu(t, "trace", "attach", ref, file)

	up, _ := url.Parse("http://" + srv.Addr)
	fwd := httputil.NewSingleHostReverseProxy(up)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") || strings.Contains(r.URL.Path, "/manifests/sha256-") {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
			return
		}
		fwd.ServeHTTP(w, r)
	}))
	defer hang.Close()

	target := filepath.Join(t.TempDir(), "mnt")
	start := time.Now()
	stop := startMount(t, strings.TrimPrefix(hang.URL, "http://")+"/bb:v1", target, "--cache", t.TempDir(),
		"--state-dir", t.TempDir(), "--trace", "auto", "--trace-wait", "500ms")
	took := time.Since(start)
	treetest.Compare(t, tree, target)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The referrers query hangs for a minute; the mount waited 0.5 s for it.
	if took > 20*time.Second {
		t.Fatalf("the mount took %v behind a hanging trace lookup", took)
	}
	t.Logf("mounted in %v with the trace lookup hanging", took)
}
