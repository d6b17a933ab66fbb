package lazymount_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/metrics"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/trace"
)

// helloWorld puts the real converted hello-world overlaybd image into an
// embedded registry and returns its reference.
func helloWorld(t *testing.T) string {
	t.Helper()
	testenv.RequireLazyMount(t)
	return testreg.Start(t).HelloWorld(t, "hello:obd")
}

// start mounts ref at a fresh directory with a fresh cache.
func start(t *testing.T, ref string, opts ...lazymount.Option) (*lazymount.Mount, string) {
	t.Helper()
	dir := t.TempDir()
	opts = append([]lazymount.Option{lazymount.WithStateDir(t.TempDir()), lazymount.WithBackstoreOptions(backstore.WithCacheDir(t.TempDir()))}, opts...)
	m, err := lazymount.Start(context.Background(), ref, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

// TestRecordThenPrefetch: a mount's reads, recorded, make a trace that the
// next mount of the image prefetches; the metrics sum the prefetch over
// mounts, running and closed; a trace that cannot be read costs the mount
// its prefetch, not the mount.
func TestRecordThenPrefetch(t *testing.T) {
	ref := helloWorld(t)

	rec := trace.NewRecorder()
	m, dir := start(t, ref, lazymount.WithTrace(trace.SourceSpec{Kind: trace.SourceNone}),
		lazymount.WithBackstoreOptions(backstore.WithObserver(rec)), lazymount.WithOpened(func(bs *backstore.Backstore) { rec.Attach(bs) }))
	hello, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil || len(hello) != 13256 || !bytes.HasPrefix(hello, []byte("\x7fELF")) {
		t.Fatalf("/hello: %d bytes, %v", len(hello), err)
	}
	if m.Prefetching() {
		t.Fatal("prefetching with no trace")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	tr := rec.Trace("hello", nil, "test")
	if len(tr.Records) == 0 {
		t.Fatal("nothing recorded")
	}
	file := filepath.Join(t.TempDir(), "hello.djv")
	if err := trace.WriteFile(file, tr); err != nil {
		t.Fatal(err)
	}

	reg := metrics.NewRegistry()
	met, err := lazymount.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m1, dir1 := start(t, ref, lazymount.WithTrace(trace.SourceSpec{Kind: trace.SourceFile, Path: file}), lazymount.WithMetrics(met))
	m2, dir2 := start(t, ref, lazymount.WithTrace(trace.SourceSpec{Kind: trace.SourceFile, Path: file}), lazymount.WithMetrics(met))
	for _, d := range []string{dir1, dir2} {
		got, err := os.ReadFile(filepath.Join(d, "hello"))
		if err != nil || !bytes.Equal(got, hello) {
			t.Fatalf("/hello with prefetch differs (%v)", err)
		}
	}
	if !m1.Prefetching() || !m2.Prefetching() {
		t.Fatal("not prefetching with a trace of the image")
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	r1 := m1.Report()
	// One closed, one running: both count.
	waitUnits(t, reg, m2, r1.Units)
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := m2.Report()
	if r1.Units == 0 || r1.Failed != 0 {
		t.Fatalf("prefetch report %+v", r1)
	}
	if got, want := units(t, reg), r1.Units+r2.Units; got != want {
		t.Fatalf("metrics count %d prefetch units, the mounts %d", got, want)
	}

	// A corrupt trace: no prefetch, the image still served.
	bad := filepath.Join(t.TempDir(), "bad.djv")
	os.WriteFile(bad, []byte("not a trace"), 0o644)
	m3, dir3 := start(t, ref, lazymount.WithTrace(trace.SourceSpec{Kind: trace.SourceFile, Path: bad}))
	defer m3.Close()
	if got, err := os.ReadFile(filepath.Join(dir3, "hello")); err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("/hello with a corrupt trace: %v", err)
	}
	if m3.Prefetching() {
		t.Fatal("prefetching a corrupt trace")
	}
}

// units sums the prefetch units, over every outcome, that reg gathers.
func units(t *testing.T, reg prometheus.Gatherer) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if f.GetName() != "dejavu_prefetch_units" {
			continue
		}
		for _, m := range f.GetMetric() {
			n += int(m.GetGauge().GetValue())
		}
	}
	return n
}

// waitUnits waits until the running mount's plan shows in the metrics next
// to the closed one's.
func waitUnits(t *testing.T, reg prometheus.Gatherer, running *lazymount.Mount, closed int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if units(t, reg) == closed+running.Report().Units {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("metrics count %d prefetch units; want %d closed + %d running", units(t, reg), closed, running.Report().Units)
}
