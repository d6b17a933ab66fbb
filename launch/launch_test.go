package launch

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

func TestMain(m *testing.M) {
	Init()
	os.Exit(m.Run())
}

// busyboxRoot makes a tiny root file system from a static busybox.
func busyboxRoot(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	// Work directories go under TMPDIR: a temporary directory of this
	// test's own, so that the leftover check sees only what this test
	// made, not what tests of other packages running beside it make.
	t.Setenv("TMPDIR", t.TempDir())
	const bb = "/bin/busybox"
	f, err := elf.Open(bb)
	if err != nil {
		testenv.Skip(t, "test needs a static busybox (Debian package busybox-static)")
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			testenv.Skip(t, "test needs a static busybox (Debian package busybox-static); "+bb+" is dynamic")
		}
	}
	f.Close()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "www"), 0o755)
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "echo", "cat", "id", "hostname", "sleep", "ls", "touch", "mkdir", "pwd", "httpd", "nc", "ps", "env", "false", "true"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\napp:x:1000:\nstaff:x:50:\n"), 0o644)
	os.WriteFile(filepath.Join(root, "www", "index.html"), []byte("ready\n"), 0o644)
	return root
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestExitProbeAndEnvironment(t *testing.T) {
	root := busyboxRoot(t)
	var out, errb bytes.Buffer
	res, err := Run(context.Background(), Spec{
		RootFS: root,
		Config: v1.Config{
			Entrypoint: []string{"/bin/sh", "-c"},
			Cmd:        []string{`echo host=$(hostname) pid=$$ id=$(id -u):$(id -g) pwd=$(pwd) greet=$GREET; echo data > /tmp/x; cat /tmp/x; ls /proc/self/fd >/dev/null && echo proc-ok; echo home > ./f && cat ./f`},
			Env:        []string{"GREET=hello"},
			WorkingDir: "/home/app",
			User:       "app",
		},
		Ready:  Probe{Kind: ProbeExit},
		Stdout: &out, Stderr: &errb,
		Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	got := out.String()
	// The shell is one of the first processes of a new PID namespace (the
	// init's Go runtime threads take the first few numbers).
	var pid int
	if i := strings.Index(got, "pid="); i < 0 || func() bool { fmt.Sscanf(got[i:], "pid=%d", &pid); return pid <= 0 || pid > 64 }() {
		t.Errorf("not in a new PID namespace: pid %d\n%s", pid, got)
	}
	for _, want := range []string{"host=dejavu", "id=1000:1000", "pwd=/home/app", "greet=hello", "data", "proc-ok", "home"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if res.ExitCode != 0 || res.Ready <= 0 {
		t.Errorf("result %+v", res)
	}
	// Writes went to the upper layer, not to the image.
	if _, err := os.Stat(filepath.Join(root, "tmp", "x")); err == nil {
		t.Error("the program wrote into the lower root file system")
	}
	assertNoLeftovers(t)
}

func TestNonZeroExit(t *testing.T) {
	root := busyboxRoot(t)
	_, err := Run(context.Background(), Spec{RootFS: root, Config: v1.Config{Cmd: []string{"sh", "-c", "echo oops >&2; exit 3"}}, Timeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("err = %v", err)
	}
	assertNoLeftovers(t)
}

func TestNetworkProbes(t *testing.T) {
	root := busyboxRoot(t)
	for _, kind := range []string{"tcp", "http", "cmd"} {
		t.Run(kind, func(t *testing.T) {
			port := freePort(t)
			var probe Probe
			var err error
			switch kind {
			case "tcp":
				probe, err = ParseProbe(fmt.Sprintf("tcp:%d", port))
			case "http":
				probe, err = ParseProbe(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
			case "cmd":
				probe, err = ParseProbe(fmt.Sprintf("cmd:/bin/busybox wget -q -O /dev/null http://127.0.0.1:%d/index.html", port))
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), Spec{
				RootFS:  root,
				Config:  v1.Config{Cmd: []string{"httpd", "-f", "-p", fmt.Sprintf("127.0.0.1:%d", port), "-h", "/www"}},
				Ready:   probe,
				Timeout: 20 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ready <= 0 || res.ExitCode != -1 {
				t.Errorf("result %+v", res)
			}
			assertNoLeftovers(t)
		})
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	root := busyboxRoot(t)
	start := time.Now()
	_, err := Run(context.Background(), Spec{RootFS: root, Config: v1.Config{Cmd: []string{"sleep", "60"}}, Ready: Probe{Kind: ProbeTCP, Port: freePort(t)}, Timeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("a program that never gets ready was ready")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("stopping took %v", time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	if _, err := Run(ctx, Spec{RootFS: root, Config: v1.Config{Cmd: []string{"sleep", "60"}}}); err == nil {
		t.Fatal("cancelled run succeeded")
	}
	assertNoLeftovers(t)
}

func TestParseProbe(t *testing.T) {
	for in, want := range map[string]string{"exit": "exit", "tcp:8080": "tcp:8080", "http://127.0.0.1:80/x": "http:http://127.0.0.1:80/x", "cmd:true": "cmd:true"} {
		p, err := ParseProbe(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseProbe(%q) = %v, %v", in, p, err)
		}
	}
	for _, bad := range []string{"", "tcp:", "tcp:x", "tcp:70000", "cmd:", "later", "exit:1"} {
		if _, err := ParseProbe(bad); err == nil {
			t.Errorf("ParseProbe(%q) accepted", bad)
		}
	}
}

// assertNoLeftovers checks that no launch work directory or overlay mount
// of ours is left on the host.
func assertNoLeftovers(t *testing.T) {
	t.Helper()
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), "dejavu-launch-") {
		t.Errorf("launch mounts left on the host:\n%s", mi)
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "dejavu-launch-*"))
	if len(left) > 0 {
		t.Errorf("work directories left: %v", left)
	}
}
