package ctdtest

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/bench/containerdenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// Snapshotter is the name containerd knows the dejavu snapshotter by here.
const Snapshotter = "dejavu"

// Require skips (or fails when strict) unless the test can run containerd:
// root, containerd, ctr and runc.
func Require(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommands(t, "containerd", "ctr", "runc")
}

// Env is one containerd and the paths of its snapshotter.
type Env struct {
	Dir       string // everything of the run lives under it
	Sock      string // the snapshotter's socket
	Root      string // the snapshotter's root
	Namespace string // the containerd namespace of ctr commands
	Ctd       *containerdenv.Daemon

	// StopSnapshotter, when set by the test, stops the snapshotter; the
	// teardown calls it after containerd has stopped.
	StopSnapshotter func()
}

// New prepares a directory for a run in namespace ("" picks one of this
// process) and registers the teardown, which fails the test when anything
// of the run is left.
func New(t testing.TB, namespace string) *Env {
	t.Helper()
	// Unix socket paths are short: keep the directory near the root.
	dir, err := os.MkdirTemp("", "djv-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	if namespace == "" {
		namespace = "djv-" + strconv.Itoa(os.Getpid())
	}
	e := &Env{Dir: dir, Sock: filepath.Join(dir, "sn.sock"), Root: filepath.Join(dir, "sn"), Namespace: namespace}
	t.Cleanup(func() { e.teardown(t) })
	return e
}

func (e *Env) teardown(t testing.TB) {
	if e.Ctd != nil {
		// Shims exit on their own once their tasks are deleted.
		for i := 0; i < 100 && len(e.Ctd.Shims()) > 0; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if shims := e.Ctd.Shims(); len(shims) > 0 {
			t.Errorf("shims left running: %v", shims)
		}
		if cg := containerdenv.ContainerCgroups(e.Namespace); len(cg) > 0 {
			t.Errorf("container cgroups left: %v", cg)
		}
		if err := e.Ctd.Close(); err != nil {
			t.Error(err)
		}
	}
	if e.StopSnapshotter != nil {
		e.StopSnapshotter()
	}
	if left := containerdenv.Leftovers(e.Dir, e.Namespace); len(left) > 0 {
		t.Errorf("left behind after teardown: %s", strings.Join(left, "; "))
	}
	os.RemoveAll(e.Dir)
}

// StartContainerd starts containerd with the snapshotter at Sock as its
// proxy plugin, in the env's namespace, with opts added.
func (e *Env) StartContainerd(t testing.TB, opts ...containerdenv.Option) {
	t.Helper()
	opts = append([]containerdenv.Option{containerdenv.WithProxySnapshotter(Snapshotter, e.Sock), containerdenv.WithNamespace(e.Namespace)}, opts...)
	ctd, err := containerdenv.Start(t.Context(), filepath.Join(e.Dir, "ctd"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.Ctd = ctd
}

// WaitForSocket waits until something listens on the unix socket sock;
// done, when not nil, reports that the server exited first.
func WaitForSocket(t testing.TB, sock string, done <-chan error) {
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
