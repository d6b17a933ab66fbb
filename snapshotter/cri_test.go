package snapshotter_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/bench/containerdenv"
	"github.com/dejavu-project/dejavu/internal/testutil/busybox"
	"github.com/dejavu-project/dejavu/internal/testutil/ctdtest"
	"github.com/dejavu-project/dejavu/internal/testutil/metricstest"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/layerdiff"
	"github.com/dejavu-project/dejavu/snapshotter"
	"github.com/dejavu-project/dejavu/trace"
)

// TestCRIPod: a pod started as the kubelet starts one, through containerd's
// CRI API (RunPodSandbox with the host's network and a pause image the
// test builds, PullImage, CreateContainer, StartContainer), its image on
// the dejavu snapshotter. The image has traces of two workloads attached,
// so that "auto" alone would not pick one, and CRI passes no pod
// annotations: the snapshotter's config maps the image's repository to a
// workload. The container prints the right bytes, its image was
// prefetched, and teardown leaves nothing.
func TestCRIPod(t *testing.T) {
	ctdtest.Require(t)
	addr, tree, ref, file := tracedImage(t)
	attach(t, ref, file)
	other, err := trace.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	other.Workload = "other"
	r, _ := imageref.Parse(ref)
	if _, err := trace.Attach(t.Context(), r, other); err != nil {
		t.Fatal(err)
	}
	var count testreg.Counter
	proxy := testreg.Proxy(t, addr, &count)
	pref := strings.Replace(ref, addr, proxy, 1)
	pause := strings.Replace(pauseImage(t, addr), addr, proxy, 1)

	rules, err := snapshotter.ParseConfig([]byte("[[images]]\nmatch = \"" + proxy + "/*\"\nworkload = \"default\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "k8s.io")
	e.startInProcess(t, snapshotter.WithConfig(rules))
	e.StartContainerd(t, containerdenv.WithCRI(ctdtest.Snapshotter, proxy), containerdenv.WithSandboxImage(pause))
	rt, images := criClients(t, e)

	logs := t.TempDir()
	pod := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "bb", Uid: "bb-uid", Namespace: "default"},
		LogDirectory: logs,
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}},
	}
	sandbox, err := rt.RunPodSandbox(t.Context(), &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(e.Dir, "ctd", "containerd.log"))
		t.Fatalf("RunPodSandbox: %v\n%s", err, b)
	}
	pulled, err := images.PullImage(t.Context(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: pref}, SandboxConfig: pod})
	if err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	created, err := rt.CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: sandbox.PodSandboxId, SandboxConfig: pod,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "md5"}, Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef},
			Command: md5Data, LogPath: "md5.log"}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := rt.StartContainer(t.Context(), &runtimeapi.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	status := waitExited(t, rt, created.ContainerId)
	if got, want := criLog(t, filepath.Join(logs, "md5.log")), busybox.MD5Listing(t, tree); status.ExitCode != 0 || got != want {
		t.Fatalf("container exited %d (%s), printed:\n%s\nwant:\n%s", status.ExitCode, status.Reason, got, want)
	}

	for _, err := range []error{
		ignore(rt.RemoveContainer(t.Context(), &runtimeapi.RemoveContainerRequest{ContainerId: created.ContainerId})),
		ignore(rt.StopPodSandbox(t.Context(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sandbox.PodSandboxId})),
		ignore(rt.RemovePodSandbox(t.Context(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sandbox.PodSandboxId})),
		ignore(images.RemoveImage(t.Context(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef}})),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.WaitUnmounted(t)
	m := metricstest.Scrape(t, e.metrics)
	if m[`dejavu_fetches_total{cause="prefetch"}`] == 0 || m[`dejavu_prefetch_units{outcome="hit"}`]+m[`dejavu_prefetch_units{outcome="partial"}`] == 0 {
		t.Fatalf("the pod's image was not prefetched: %v", m)
	}
	t.Logf("pod: prefetch %v fetches, units hit %v partial %v miss %v", m[`dejavu_fetches_total{cause="prefetch"}`],
		m[`dejavu_prefetch_units{outcome="hit"}`], m[`dejavu_prefetch_units{outcome="partial"}`], m[`dejavu_prefetch_units{outcome="miss"}`])
}

func ignore[T any](_ T, err error) error { return err }

// criClients connects to containerd's CRI services, once CRI answers: it
// comes up a moment after containerd does.
func criClients(t *testing.T, e *env) (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+e.Ctd.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	for i := 0; ; i++ {
		_, err := rt.Version(t.Context(), &runtimeapi.VersionRequest{})
		if err == nil {
			break
		}
		if i == 50 {
			t.Fatalf("CRI: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return rt, runtimeapi.NewImageServiceClient(conn)
}

// waitExited waits (up to a minute) for the container to exit.
func waitExited(t *testing.T, rt runtimeapi.RuntimeServiceClient, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	for i := 0; i < 600; i++ {
		st, err := rt.ContainerStatus(t.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			t.Fatalf("ContainerStatus: %v", err)
		}
		if st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st.Status
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("container %s did not exit within a minute", id)
	return nil
}

// criLog is what a container printed, from its CRI log file: each line is
// "TIME STREAM TAG TEXT", TAG F for a full line, P for part of one.
func criLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			t.Fatalf("CRI log line %q", line)
		}
		out.WriteString(f[3])
		if f[2] == "F" {
			out.WriteByte('\n')
		}
	}
	return out.String()
}

// pauseImage pushes an ordinary (gzip tar) image of the busybox tree whose
// command sleeps, for the pods' pause containers, and returns its
// reference.
func pauseImage(t *testing.T, addr string) string {
	t.Helper()
	b, err := layerdiff.Image(t.Context(), []string{busybox.Tree(t)}, v1.Config{Entrypoint: []string{"/bin/busybox", "sleep", "3600"}},
		v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ref := addr + "/pause:v1"
	r, _ := imageref.Parse(ref)
	if err := remote.Write(r.Name, b.Image); err != nil {
		t.Fatal(err)
	}
	return ref
}
