package snapshotter_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/dejavu-project/dejavu/internal/bench/containerdenv"
	"github.com/dejavu-project/dejavu/internal/testutil/busybox"
	"github.com/dejavu-project/dejavu/internal/testutil/ctdtest"
	"github.com/dejavu-project/dejavu/internal/testutil/metricstest"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/snapshotter"
	"github.com/dejavu-project/dejavu/trace"
)

// md5Data is the command that prints the md5 sums of the image's data.
var md5Data = []string{"/bin/sh", "-c", "/bin/busybox md5sum /data/*/*"}

// TestContainerdStartsOverlaybdLazily: containerd and runc from the
// machine's packages, the dejavu snapshotter as a proxy plugin. The image
// is pulled without its layer blob, started by `ctr run`, prints the right
// bytes; with a trace attached the snapshotter prefetches; a label records
// a trace; and teardown leaves nothing behind.
func TestContainerdStartsOverlaybdLazily(t *testing.T) {
	ctdtest.Require(t)
	addr, tree, ref, file := tracedImage(t)
	var count testreg.Counter
	proxy := testreg.Proxy(t, addr, &count)
	pref := strings.Replace(ref, addr, proxy, 1)
	e := newEnv(t, "")
	e.startInProcess(t)
	e.StartContainerd(t)

	layerDigest := count.Layer(t, ref)
	e.pull(t, pref)
	e.LayerSnapshot(t)
	if content := e.Ctr(t, "content", "ls", "-q"); strings.Contains(content, layerDigest) {
		t.Fatalf("the layer blob %s was downloaded into containerd's content store:\n%s", layerDigest, content)
	}

	want := busybox.MD5Listing(t, tree)
	if got := e.Run(t, pref, "lazy", []string{snapshotter.LabelTrace + "=none"}, md5Data...); got != want {
		t.Fatalf("container output:\n%s\nwant:\n%s", got, want)
	}
	if count.Whole() != 0 || count.Ranged() == 0 {
		t.Fatalf("layer blob requests: %d whole, %d ranged; want none whole, some ranged", count.Whole(), count.Ranged())
	}
	e.WaitUnmounted(t)

	// With the trace attached, a cold start prefetches.
	attach(t, ref, file)
	os.RemoveAll(filepath.Join(e.Root, "cache"))
	if got := e.Run(t, pref, "prefetch", nil, md5Data...); got != want {
		t.Fatalf("container output with prefetch:\n%s\nwant:\n%s", got, want)
	}
	e.WaitUnmounted(t)
	m := metricstest.Scrape(t, e.metrics)
	if m[`dejavu_fetches_total{cause="prefetch"}`] == 0 || m[`dejavu_prefetch_units{outcome="hit"}`]+m[`dejavu_prefetch_units{outcome="partial"}`] == 0 {
		t.Fatalf("no prefetch in the snapshotter's metrics: %v", m)
	}
	t.Logf("prefetch: %v fetches, units hit %v partial %v miss %v", m[`dejavu_fetches_total{cause="prefetch"}`],
		m[`dejavu_prefetch_units{outcome="hit"}`], m[`dejavu_prefetch_units{outcome="partial"}`], m[`dejavu_prefetch_units{outcome="miss"}`])

	// A label records the start's reads.
	e.Run(t, pref, "record", []string{snapshotter.LabelRecord + "=bb"}, "/bin/sh", "-c", "cat /data/*/* > /dev/null")
	path := snapshotter.TracePath(e.Root, "bb")
	var rec *trace.Trace
	for i := 0; i < 300 && rec == nil; i++ {
		rec, _ = trace.ReadFile(path)
		time.Sleep(50 * time.Millisecond)
	}
	if rec == nil || len(rec.Records) == 0 || rec.Bytes() < 1<<20 {
		t.Fatalf("recorded trace %s: %+v", path, rec)
	}

	e.Ctr(t, "image", "rm", pref)
	e.WaitUnmounted(t)
}

// TestSnapshotterSurvivesRestartAndCrash: a container created before the
// snapshotter stops starts after it comes back (its image mounted again);
// after the snapshotter is killed (SIGKILL, mounts and FUSE left behind),
// the next one cleans up and the container still starts.
func TestSnapshotterSurvivesRestartAndCrash(t *testing.T) {
	ctdtest.Require(t)
	_, tree, ref := busybox.Image(t)
	e := newEnv(t, "")
	e.startInProcess(t)
	e.StartContainerd(t)
	e.pull(t, ref)
	e.Ctr(t, append([]string{"container", "create", "--snapshotter", ctdtest.Snapshotter, ref, "c1", "--"}, md5Data...)...)

	// A clean stop unmounts; the next start mounts the image again.
	e.StopSnapshotter()
	if e.AnyImageMounted() {
		t.Fatal("image still mounted after the snapshotter stopped")
	}
	e.startInProcess(t)
	want := busybox.MD5Listing(t, tree)
	if got := e.StartTask(t, "c1"); got != want {
		t.Fatalf("output after restart:\n%s\nwant:\n%s", got, want)
	}

	// A snapshotter killed outright, with a container running on its
	// image, leaves its mounts; the next one cleans up and serves again,
	// and once the running container is gone nothing is left.
	e.StopSnapshotter()
	cmd := e.startProcess(t)
	e.RunDetached(t, ref, "live", nil, "/bin/busybox", "sleep", "600")
	if n := e.ImageMounts(); n != 1 {
		t.Fatalf("%d image mounts before the crash, want 1", n)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	e.startInProcess(t)
	if got := e.StartTask(t, "c1"); got != want {
		t.Fatalf("output after a crash:\n%s\nwant:\n%s", got, want)
	}
	// With its image's FUSE server gone, the container may have died of
	// it already (a page it needed could not be read): kill it if not.
	e.Ctd.Ctr(t.Context(), "task", "kill", "-s", "SIGKILL", "live")
	e.WaitNoneRunning(t)
	e.Ctr(t, "task", "delete", "live")
	e.Ctr(t, "container", "rm", "c1", "live")
	e.Ctr(t, "image", "rm", ref)
	e.WaitUnmounted(t)
}

// TestContainersShareOneImageMount: two containers of one image share its
// mount, which stays while either runs and goes with the last; a trace
// pinned by its artifact digest is prefetched.
func TestContainersShareOneImageMount(t *testing.T) {
	ctdtest.Require(t)
	_, tree, ref, file := tracedImage(t)
	artifact := attach(t, ref, file)
	if !strings.HasPrefix(artifact, "sha256:") {
		t.Fatalf("attach returned %q, want the artifact digest", artifact)
	}
	e := newEnv(t, "")
	e.startInProcess(t)
	e.StartContainerd(t)
	e.pull(t, ref)

	// The first container pins the trace and keeps running.
	e.RunDetached(t, ref, "long", []string{snapshotter.LabelTrace + "=" + artifact}, "/bin/busybox", "sleep", "600")
	if n := e.ImageMounts(); n != 1 {
		t.Fatalf("%d image mounts with one container, want 1", n)
	}
	want := busybox.MD5Listing(t, tree)
	if got := e.Run(t, ref, "short", nil, md5Data...); got != want {
		t.Fatalf("second container's output:\n%s\nwant:\n%s", got, want)
	}
	if n := e.ImageMounts(); n != 1 {
		t.Fatalf("%d image mounts with two containers of one image, want 1 shared", n)
	}
	// The second container is gone (its snapshot once containerd collects
	// it); the first still has its image.
	time.Sleep(time.Second)
	if n := e.ImageMounts(); n != 1 {
		t.Fatalf("%d image mounts after the second container went, want 1", n)
	}
	m := metricstest.Scrape(t, e.metrics)
	if m[`dejavu_fetches_total{cause="prefetch"}`] == 0 {
		t.Fatalf("the pinned trace was not prefetched: %v", m)
	}
	e.Ctr(t, "task", "kill", "-s", "SIGKILL", "long")
	e.WaitNoneRunning(t)
	e.Ctr(t, "task", "delete", "long")
	e.Ctr(t, "container", "delete", "long")
	e.WaitUnmounted(t)
	e.Ctr(t, "image", "rm", ref)
	// The layers' snapshots go in containerd's garbage collection, which
	// a loaded machine runs late: the bound is time, not tries.
	for deadline := time.Now().Add(60 * time.Second); strings.Contains(e.Ctr(t, "snapshot", "--snapshotter", ctdtest.Snapshotter, "ls"), "sha256:"); {
		if time.Now().After(deadline) {
			t.Fatal("the image's snapshots stayed a minute after it was removed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A plain ctr pull unpacks the layer as a tar, which holds only the
	// overlaybd blob: the snapshotter refuses it and says what to do.
	_, err := e.Ctd.Ctr(t.Context(), "image", "pull", "--plain-http", "--snapshotter", ctdtest.Snapshotter, ref)
	if err == nil || !strings.Contains(err.Error(), "dejavu image pull") {
		t.Fatalf("plain ctr pull of an overlaybd image: %v; want an error that names dejavu image pull", err)
	}
}

// TestCRIPullKeepsLayersRemote: Kubernetes' path. containerd's CRI plugin
// (the kubelet's image service) pulls an overlaybd image with the dejavu
// snapshotter and snapshot annotations on: it passes the image reference
// itself, so the layer blob is never downloaded, as with dejavu image pull.
func TestCRIPullKeepsLayersRemote(t *testing.T) {
	ctdtest.Require(t)
	addr, _, ref := busybox.Image(t)
	var count testreg.Counter
	proxy := testreg.Proxy(t, addr, &count)
	pref := strings.Replace(ref, addr, proxy, 1)
	count.Layer(t, ref)
	e := newEnv(t, "k8s.io")
	e.startInProcess(t)
	e.StartContainerd(t, containerdenv.WithCRI(ctdtest.Snapshotter, proxy))
	_, images := criClients(t, e)
	pulled, err := images.PullImage(t.Context(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: pref}})
	if err != nil {
		t.Fatalf("CRI pull: %v", err)
	}
	layer := e.LayerSnapshot(t)
	if content := e.Ctr(t, "content", "ls", "-q"); strings.Contains(content, layer) {
		t.Fatalf("CRI downloaded the layer blob %s:\n%s", layer, content)
	}
	if info := e.Ctr(t, "snapshot", "--snapshotter", ctdtest.Snapshotter, "info", layer); !strings.Contains(info, snapshotter.LabelCRIImageRef) {
		t.Fatalf("the layer's snapshot has no CRI image label:\n%s", info)
	}
	if n := count.Whole(); n != 0 {
		t.Fatalf("%d whole GETs of the layer blob", n)
	}
	t.Logf("CRI pulled %s; the layer blob was not downloaded", pulled.ImageRef)
	if _, err := images.RemoveImage(t.Context(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef}}); err != nil {
		t.Fatal(err)
	}
}
