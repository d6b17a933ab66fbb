package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/busybox"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
)

// TestSlowTraceLookupDoesNotHoldTheStart: a registry that never answers
// the referrers query (a fake fault in front of the real registry: no real
// registry can be told to hang on one API) must not hold the mount longer
// than --trace-wait; the image is then served without prefetch.
func TestSlowTraceLookupDoesNotHoldTheStart(t *testing.T) {
	srv, tree, ref, file := tracedImage(t)
	dejavu(t, "trace", "attach", ref, file)

	up, _ := url.Parse("http://" + srv)
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

// TestMetricsDuringPrefetch scrapes --metrics-addr of a mount that
// prefetches and finds prefetch fetches and outcomes counted.
func TestMetricsDuringPrefetch(t *testing.T) {
	_, tree, ref, file := tracedImage(t)

	addr := testenv.FreeAddr(t)
	target := filepath.Join(t.TempDir(), "mnt")
	stop := startMount(t, ref, target, "--cache", t.TempDir(), "--state-dir", t.TempDir(), "--trace", file, "--metrics-addr", addr)
	defer stop()
	treetest.Compare(t, tree, target)
	want := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^dejavu_fetches_total\{cause="prefetch"\} [1-9]`),
		regexp.MustCompile(`(?m)^dejavu_fetch_bytes_total\{cause="prefetch"\} [1-9]`),
		regexp.MustCompile(`(?m)^dejavu_prefetch_units\{outcome="(hit|partial)"\} [1-9]`),
		regexp.MustCompile(`(?m)^dejavu_device_reads_total\{cached="true"\} [1-9]`),
		regexp.MustCompile(`(?m)^dejavu_fetch_seconds_bucket\{cause="prefetch",le="\+Inf"\} [1-9]`),
	}
	var body string
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		missing := 0
		for _, re := range want {
			if !re.MatchString(body) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, re := range want {
				if !re.MatchString(body) {
					t.Errorf("no %s", re)
				}
			}
			t.Fatalf("metrics:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tracedImage builds the busybox test image into a fresh embedded registry
// and records its start; it returns the registry's address, the image's
// tree, its reference and the trace file.
func tracedImage(t *testing.T) (string, string, string, string) {
	t.Helper()
	addr, tree, ref := busybox.Image(t)
	file := filepath.Join(t.TempDir(), "bb.djv")
	dejavu(t, "trace", "record", ref, "--out", file, "--state-dir", t.TempDir())
	return addr, tree, ref, file
}
