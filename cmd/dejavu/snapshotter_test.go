package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/dejavu-project/dejavu/internal/bench/containerdenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/reports"
	"github.com/dejavu-project/dejavu/snapshotter"
	"github.com/dejavu-project/dejavu/trace"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// snapshotterEnv is a containerd from the machine's packages with the
// dejavu snapshotter as its proxy plugin, everything under one directory.
type snapshotterEnv struct {
	dir, sock, root, metrics, ns string
	ctd                          *containerdenv.Daemon
	stop                         func() // stops the snapshotter
}

func requireContainerd(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommands(t, "containerd", "ctr", "runc")
}

// newSnapshotterEnv prepares the directory; start the snapshotter, then
// containerd (startContainerd), as a host would: containerd backs off for
// a while from a proxy plugin that it found down.
func newSnapshotterEnv(t *testing.T) *snapshotterEnv {
	t.Helper()
	// Unix socket paths are short: keep the directory near the root.
	dir, err := os.MkdirTemp("", "djv-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	e := &snapshotterEnv{dir: dir, sock: filepath.Join(dir, "sn.sock"), root: filepath.Join(dir, "sn"), metrics: freeAddr(t)}
	ns := "djv-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		// Teardown must leave nothing: no mounts, loop devices, shims or
		// cgroups.
		if e.ctd != nil {
			// Shims exit on their own once their tasks are deleted.
			for i := 0; i < 100 && len(e.ctd.Shims()) > 0; i++ {
				time.Sleep(50 * time.Millisecond)
			}
			if shims := e.ctd.Shims(); len(shims) > 0 {
				t.Errorf("shims left running: %v", shims)
			}
			if cg := containerdenv.ContainerCgroups(ns); len(cg) > 0 {
				t.Errorf("container cgroups left: %v", cg)
			}
			if err := e.ctd.Close(); err != nil {
				t.Error(err)
			}
		}
		if e.stop != nil {
			e.stop()
		}
		if left := containerdenv.Leftovers(dir, ns); len(left) > 0 {
			t.Errorf("left behind after teardown: %s", strings.Join(left, "; "))
		}
		os.RemoveAll(dir)
	})
	e.ns = ns
	return e
}

func (e *snapshotterEnv) startContainerd(t *testing.T) {
	t.Helper()
	var err error
	e.ctd, err = containerdenv.Start(t.Context(), filepath.Join(e.dir, "ctd"),
		containerdenv.WithProxySnapshotter("dejavu", e.sock), containerdenv.WithNamespace(e.ns))
	if err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startInProcess runs `dejavu snapshotter` in this process.
func (e *snapshotterEnv) startInProcess(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetArgs([]string{"snapshotter", "--address", e.sock, "--root", e.root, "--metrics-addr", e.metrics})
		root.SetOut(io.Discard)
		done <- root.ExecuteContext(ctx)
	}()
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("snapshotter: %v", err)
		}
		e.stop = nil
	}
	waitForSocket(t, e.sock, done)
}

func waitForSocket(t *testing.T, sock string, done <-chan error) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-done:
			t.Fatalf("snapshotter exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("snapshotter socket did not appear")
}

// ctr runs ctr; while containerd's connection to a restarted snapshotter
// is still backing off (a few seconds at most), it tries again.
func (e *snapshotterEnv) ctr(t *testing.T, args ...string) string {
	t.Helper()
	for i := 0; ; i++ {
		out, err := e.ctd.Ctr(t.Context(), args...)
		if err == nil {
			return out
		}
		if !strings.Contains(err.Error(), "Unavailable") && !strings.Contains(err.Error(), "unavailable") || i == 50 {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run starts a container with `ctr run --rm` and returns its output.
func (e *snapshotterEnv) run(t *testing.T, ref, id string, labels []string, args ...string) string {
	t.Helper()
	a := append([]string{"run", "--rm", "--snapshotter", "dejavu"}, e.ctd.RunFlags()...)
	for _, l := range labels {
		a = append(a, "--snapshotter-label", l)
	}
	return e.ctr(t, append(append(a, ref, id), args...)...)
}

// waitUnmounted waits until the snapshotter has no image mounted: containerd
// removes snapshots in its garbage collection, after `ctr run --rm` returns.
func (e *snapshotterEnv) waitUnmounted(t *testing.T) {
	t.Helper()
	mnt := filepath.Join(e.root, "mnt")
	for i := 0; i < 300; i++ {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		if !strings.Contains(string(b), mnt) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the image stayed mounted after its container was removed")
}

// md5Listing is what `md5sum /data/*/*` prints for the tree.
func md5Listing(t *testing.T, tree string) string {
	files, err := filepath.Glob(filepath.Join(tree, "data", "*", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no data files in %s: %v", tree, err)
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(tree, f)
		fmt.Fprintf(&b, "%x  /%s\n", md5.Sum(data), rel)
	}
	return b.String()
}

// blobCounter forwards to a registry and counts the requests for one blob,
// with and without a Range header.
type blobCounter struct {
	digest        atomic.Pointer[string]
	whole, ranged atomic.Int64
}

func countingProxy(t *testing.T, registry string) (string, *blobCounter) {
	up, _ := url.Parse("http://" + registry)
	fwd := httputil.NewSingleHostReverseProxy(up)
	c := &blobCounter{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := c.digest.Load(); d != nil && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+*d) {
			if r.Header.Get("Range") == "" {
				c.whole.Add(1)
			} else {
				c.ranged.Add(1)
			}
		}
		fwd.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), c
}

// layerOf makes c count the requests for the (one) layer blob of the
// image at ref, and returns its digest.
func (c *blobCounter) layerOf(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest of %s: %v, %+v", ref, err, m)
	}
	d := m.Layers[0].Digest.String()
	c.digest.Store(&d)
	return d
}

// layerSnapshot is the committed snapshot of the image's one layer.
func (e *snapshotterEnv) layerSnapshot(t *testing.T) string {
	t.Helper()
	snaps := e.ctr(t, "snapshot", "--snapshotter", "dejavu", "ls")
	for _, line := range strings.Split(snaps, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[0], "sha256:") && f[len(f)-1] == "Committed" {
			return f[0]
		}
	}
	t.Fatalf("no committed layer snapshot after the pull:\n%s", snaps)
	return ""
}

func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndex(line, " "); i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			m[line[:i]] = v
		}
	}
	return m
}

// TestContainerdStartsOverlaybdLazily: containerd and runc from the
// machine's packages, the dejavu snapshotter as a proxy plugin. The image
// is pulled without its layer blob, started by `ctr run`, prints the right
// bytes; with a trace attached the snapshotter prefetches; a label records
// a trace; and teardown leaves nothing behind.
func TestContainerdStartsOverlaybdLazily(t *testing.T) {
	requireContainerd(t)
	addr, tree, ref, file := tracedImage(t)
	proxy, count := countingProxy(t, addr)
	pref := strings.Replace(ref, addr, proxy, 1)
	e := newSnapshotterEnv(t)
	e.startInProcess(t)
	e.startContainerd(t)

	layerDigest := count.layerOf(t, ref)
	dejavu(t, "image", "pull", "--address", e.ctd.Address, "-n", e.ctd.Namespace, pref)
	e.layerSnapshot(t)
	if content := e.ctr(t, "content", "ls", "-q"); strings.Contains(content, layerDigest) {
		t.Fatalf("the layer blob %s was downloaded into containerd's content store:\n%s", layerDigest, content)
	}

	want := md5Listing(t, tree)
	if got := e.run(t, pref, "lazy", []string{snapshotter.LabelTrace + "=none"}, "/bin/sh", "-c", "/bin/busybox md5sum /data/*/*"); got != want {
		t.Fatalf("container output:\n%s\nwant:\n%s", got, want)
	}
	if count.whole.Load() != 0 || count.ranged.Load() == 0 {
		t.Fatalf("layer blob requests: %d whole, %d ranged; want none whole, some ranged", count.whole.Load(), count.ranged.Load())
	}
	e.waitUnmounted(t)

	// With the trace attached, a cold start prefetches.
	dejavu(t, "trace", "attach", ref, file)
	os.RemoveAll(filepath.Join(e.root, "cache"))
	if got := e.run(t, pref, "prefetch", nil, "/bin/sh", "-c", "/bin/busybox md5sum /data/*/*"); got != want {
		t.Fatalf("container output with prefetch:\n%s\nwant:\n%s", got, want)
	}
	e.waitUnmounted(t)
	m := scrape(t, e.metrics)
	if m[`dejavu_fetches_total{cause="prefetch"}`] == 0 || m[`dejavu_prefetch_units{outcome="hit"}`]+m[`dejavu_prefetch_units{outcome="partial"}`] == 0 {
		t.Fatalf("no prefetch in the snapshotter's metrics: %v", m)
	}
	t.Logf("prefetch: %v fetches, units hit %v partial %v miss %v", m[`dejavu_fetches_total{cause="prefetch"}`],
		m[`dejavu_prefetch_units{outcome="hit"}`], m[`dejavu_prefetch_units{outcome="partial"}`], m[`dejavu_prefetch_units{outcome="miss"}`])

	// A label records the start's reads.
	e.run(t, pref, "record", []string{snapshotter.LabelRecord + "=bb"}, "/bin/sh", "-c", "cat /data/*/* > /dev/null")
	path := snapshotter.TracePath(e.root, "bb")
	var rec *trace.Trace
	for i := 0; i < 300 && rec == nil; i++ {
		rec, _ = trace.ReadFile(path)
		time.Sleep(50 * time.Millisecond)
	}
	if rec == nil || len(rec.Records) == 0 || rec.Bytes() < 1<<20 {
		t.Fatalf("recorded trace %s: %+v", path, rec)
	}

	e.ctr(t, "image", "rm", pref)
	e.waitUnmounted(t)
}

// TestSnapshotterSurvivesRestartAndCrash: a container created before the
// snapshotter stops starts after it comes back (its image mounted again);
// after the snapshotter is killed (SIGKILL, mounts and FUSE left behind),
// the next one cleans up and the container still starts.
func TestSnapshotterSurvivesRestartAndCrash(t *testing.T) {
	requireContainerd(t)
	_, tree, ref := busyboxImage(t)
	e := newSnapshotterEnv(t)
	e.startInProcess(t)
	e.startContainerd(t)
	dejavu(t, "image", "pull", "--address", e.ctd.Address, "-n", e.ctd.Namespace, ref)
	e.ctr(t, "container", "create", "--snapshotter", "dejavu", ref, "c1", "--", "/bin/sh", "-c", "/bin/busybox md5sum /data/*/*")

	// A clean stop unmounts; the next start mounts the image again.
	e.stop()
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), filepath.Join(e.root, "mnt")) {
		t.Fatal("image still mounted after the snapshotter stopped")
	}
	e.startInProcess(t)
	want := md5Listing(t, tree)
	if got := e.startTask(t, "c1"); got != want {
		t.Fatalf("output after restart:\n%s\nwant:\n%s", got, want)
	}

	// A snapshotter killed outright, with a container running on its
	// image, leaves its mounts; the next one cleans up and serves again,
	// and once the running container is gone nothing is left.
	e.stop()
	cmd := exec.Command(os.Args[0], "snapshotter", "--address", e.sock, "--root", e.root)
	cmd.Env = append(os.Environ(), "DEJAVU_TEST_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForSocket(t, e.sock, nil)
	e.ctr(t, append(append([]string{"run", "-d", "--snapshotter", "dejavu"}, e.ctd.RunFlags()...), ref, "live", "/bin/busybox", "sleep", "600")...)
	if n := e.imageMounts(); n != 1 {
		t.Fatalf("%d image mounts before the crash, want 1", n)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	e.startInProcess(t)
	if got := e.startTask(t, "c1"); got != want {
		t.Fatalf("output after a crash:\n%s\nwant:\n%s", got, want)
	}
	// With its image's FUSE server gone, the container may have died of
	// it already (a page it needed could not be read): kill it if not.
	e.ctd.Ctr(t.Context(), "task", "kill", "-s", "SIGKILL", "live")
	for i := 0; i < 100; i++ {
		if out, _ := e.ctd.Ctr(t.Context(), "task", "ls"); !strings.Contains(out, "RUNNING") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.ctr(t, "task", "delete", "live")
	e.ctr(t, "container", "rm", "c1", "live")
	e.ctr(t, "image", "rm", ref)
	e.waitUnmounted(t)
}

// startTask starts a created container and waits for it (ctr deletes the
// task when it exits).
func (e *snapshotterEnv) startTask(t *testing.T, id string) string {
	t.Helper()
	return e.ctr(t, append(append([]string{"task", "start"}, fifoFlag(e)...), id)...)
}

func fifoFlag(e *snapshotterEnv) []string {
	return []string{"--fifo-dir", filepath.Join(e.ctd.Dir, "fifo")}
}

// imageMounts counts the snapshotter's image mounts.
func (e *snapshotterEnv) imageMounts() int {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Count(string(b), " "+filepath.Join(e.root, "mnt")+"/")
}

// TestContainersShareOneImageMount: two containers of one image share its
// mount, which stays while either runs and goes with the last; a trace
// pinned by its artifact digest is prefetched.
func TestContainersShareOneImageMount(t *testing.T) {
	requireContainerd(t)
	_, tree, ref, file := tracedImage(t)
	out, _ := dejavu(t, "trace", "attach", ref, file)
	artifact := strings.TrimSpace(out)
	if !strings.HasPrefix(artifact, "sha256:") {
		t.Fatalf("trace attach printed %q, want the artifact digest", out)
	}
	e := newSnapshotterEnv(t)
	e.startInProcess(t)
	e.startContainerd(t)
	dejavu(t, "image", "pull", "--address", e.ctd.Address, "-n", e.ctd.Namespace, ref)

	// The first container pins the trace and keeps running.
	e.ctr(t, append(append([]string{"run", "-d", "--snapshotter", "dejavu", "--snapshotter-label", snapshotter.LabelTrace + "=" + artifact}, e.ctd.RunFlags()...),
		ref, "long", "/bin/busybox", "sleep", "600")...)
	if n := e.imageMounts(); n != 1 {
		t.Fatalf("%d image mounts with one container, want 1", n)
	}
	want := md5Listing(t, tree)
	if got := e.run(t, ref, "short", nil, "/bin/sh", "-c", "/bin/busybox md5sum /data/*/*"); got != want {
		t.Fatalf("second container's output:\n%s\nwant:\n%s", got, want)
	}
	if n := e.imageMounts(); n != 1 {
		t.Fatalf("%d image mounts with two containers of one image, want 1 shared", n)
	}
	// The second container is gone (its snapshot once containerd collects
	// it); the first still has its image.
	time.Sleep(time.Second)
	if n := e.imageMounts(); n != 1 {
		t.Fatalf("%d image mounts after the second container went, want 1", n)
	}
	m := scrape(t, e.metrics)
	if m[`dejavu_fetches_total{cause="prefetch"}`] == 0 {
		t.Fatalf("the pinned trace was not prefetched: %v", m)
	}
	e.ctr(t, "task", "kill", "-s", "SIGKILL", "long")
	for i := 0; i < 100; i++ {
		if out, _ := e.ctd.Ctr(t.Context(), "task", "ls"); !strings.Contains(out, "RUNNING") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.ctr(t, "task", "delete", "long")
	e.ctr(t, "container", "delete", "long")
	e.waitUnmounted(t)
	e.ctr(t, "image", "rm", ref)
	// The layers' snapshots go in containerd's garbage collection.
	for i := 0; strings.Contains(e.ctr(t, "snapshot", "--snapshotter", "dejavu", "ls"), "sha256:"); i++ {
		if i == 200 {
			t.Fatal("the image's snapshots stayed after it was removed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A plain ctr pull unpacks the layer as a tar, which holds only the
	// overlaybd blob: the snapshotter refuses it and says what to do.
	_, err := e.ctd.Ctr(t.Context(), "image", "pull", "--plain-http", "--snapshotter", "dejavu", ref)
	if err == nil || !strings.Contains(err.Error(), "dejavu image pull") {
		t.Fatalf("plain ctr pull of an overlaybd image: %v; want an error that names dejavu image pull", err)
	}
}

// TestBenchThroughContainerd: `dejavu bench --runtime containerd` times
// lazy, prefetch and warm starts through containerd and the snapshotter;
// warm starts ask the registry nothing, prefetch starts report outcomes,
// and the bench leaves nothing behind.
func TestBenchThroughContainerd(t *testing.T) {
	requireContainerd(t)
	_, _, ref, file := tracedImage(t)
	dejavu(t, "trace", "attach", ref, file)
	out := filepath.Join(t.TempDir(), "results.json")
	table, _ := dejavu(t, "bench", ref, "--runtime", "containerd", "--modes", "lazy,prefetch,warm", "--runs", "1", "--rtt", "5ms", "--bandwidth", "400Mbit", "-o", out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := reports.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Runtime != "containerd" || len(res.Starts) != 3 {
		t.Fatalf("results: runtime %q, %d starts\n%s", res.Runtime, len(res.Starts), table)
	}
	for _, s := range res.Starts {
		switch {
		case s.Seconds <= 0 || s.ReadBytes == 0:
			t.Errorf("%s: %.3fs, %d bytes read", s.Mode, s.Seconds, s.ReadBytes)
		case s.Mode == "warm" && s.Requests != 0:
			t.Errorf("warm start asked the registry %d times", s.Requests)
		case s.Mode == "prefetch" && (s.Prefetch == nil || s.Prefetch.Units == 0 || s.Prefetch.Hit+s.Prefetch.Partial == 0):
			t.Errorf("prefetch start: report %+v", s.Prefetch)
		case s.Mode == "lazy" && (s.Requests == 0 || s.NeededBytes == 0):
			t.Errorf("lazy start: %d requests, %d bytes needed", s.Requests, s.NeededBytes)
		}
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), "djv-bench-ctd-") {
		t.Fatal("the bench left mounts behind")
	}
	if cg := containerdenv.Cgroups("dejavu-bench"); len(cg) > 0 {
		t.Fatalf("the bench left cgroups: %v", cg)
	}
	t.Logf("\n%s", table)
}

// TestCRIPullKeepsLayersRemote: Kubernetes' path. containerd's CRI plugin
// (the kubelet's image service) pulls an overlaybd image with the dejavu
// snapshotter and snapshot annotations on: it passes the image reference
// itself, so the layer blob is never downloaded, as with dejavu image pull.
func TestCRIPullKeepsLayersRemote(t *testing.T) {
	requireContainerd(t)
	addr, _, ref := busyboxImage(t)
	proxy, count := countingProxy(t, addr)
	pref := strings.Replace(ref, addr, proxy, 1)
	count.layerOf(t, ref)
	e := newSnapshotterEnv(t)
	e.ns = "k8s.io"
	e.startInProcess(t)
	var err error
	e.ctd, err = containerdenv.Start(t.Context(), filepath.Join(e.dir, "ctd"), containerdenv.WithProxySnapshotter("dejavu", e.sock),
		containerdenv.WithNamespace(e.ns), containerdenv.WithCRI("dejavu", proxy))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+e.ctd.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	images := runtimeapi.NewImageServiceClient(conn)
	// CRI comes up a moment after containerd answers.
	var pulled *runtimeapi.PullImageResponse
	for i := 0; ; i++ {
		pulled, err = images.PullImage(t.Context(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: pref}})
		if err == nil || i == 50 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("CRI pull: %v", err)
	}
	layer := e.layerSnapshot(t)
	if content := e.ctr(t, "content", "ls", "-q"); strings.Contains(content, layer) {
		t.Fatalf("CRI downloaded the layer blob %s:\n%s", layer, content)
	}
	if info := e.ctr(t, "snapshot", "--snapshotter", "dejavu", "info", layer); !strings.Contains(info, snapshotter.LabelCRIImageRef) {
		t.Fatalf("the layer's snapshot has no CRI image label:\n%s", info)
	}
	if n := count.whole.Load(); n != 0 {
		t.Fatalf("%d whole GETs of the layer blob", n)
	}
	t.Logf("CRI pulled %s; the layer blob was not downloaded", pulled.ImageRef)
	if _, err := images.RemoveImage(t.Context(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef}}); err != nil {
		t.Fatal(err)
	}
}
