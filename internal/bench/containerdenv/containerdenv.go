package containerdenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Daemon is a running containerd.
type Daemon struct {
	Dir       string // everything of this daemon lives under it
	Address   string // its gRPC socket
	Namespace string // the containerd namespace ctr commands use
	cmd       *exec.Cmd
	exited    chan struct{}
	log       *os.File
}

// Option configures Start.
type Option func(*config)

type config struct {
	proxies      map[string]string
	namespace    string
	cri          *criConfig
	sandboxImage string
}

type criConfig struct {
	snapshotter string
	plainHTTP   []string
}

// WithCRI turns containerd's CRI plugin on, as a Kubernetes node has it:
// snapshotter for every image, snapshot annotations on, and plain HTTP to
// the registries at plainHTTP (host:port). Its namespace is k8s.io.
func WithCRI(snapshotter string, plainHTTP ...string) Option {
	return func(c *config) { c.cri = &criConfig{snapshotter: snapshotter, plainHTTP: plainHTTP} }
}

// WithSandboxImage sets the image of the pods' pause containers (CRI's
// sandbox_image), for pods on a machine that cannot reach the default one.
// It goes with WithCRI.
func WithSandboxImage(ref string) Option { return func(c *config) { c.sandboxImage = ref } }

// WithProxySnapshotter adds a snapshotter proxy plugin named name at the
// unix socket address.
func WithProxySnapshotter(name, address string) Option {
	return func(c *config) { c.proxies[name] = address }
}

// WithNamespace sets the namespace of ctr commands (default "dejavu-test").
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// Start starts containerd under dir and waits until it answers.
func Start(ctx context.Context, dir string, opts ...Option) (*Daemon, error) {
	c := config{proxies: map[string]string{}, namespace: "dejavu-test"}
	for _, o := range opts {
		o(&c)
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, fmt.Errorf("containerdenv: %w (apt-get install containerd runc)", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	d := &Daemon{Dir: dir, Address: filepath.Join(dir, "containerd.sock"), Namespace: c.namespace, exited: make(chan struct{})}
	for _, sub := range []string{"root", "state", "fifo", "runc"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "version = 2\nroot = %q\nstate = %q\n", filepath.Join(dir, "root"), filepath.Join(dir, "state"))
	// No snapshotters this machine cannot run, and no Kubernetes unless
	// asked for.
	disabled := `"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"`
	if c.cri == nil {
		disabled += `, "io.containerd.grpc.v1.cri"`
	}
	fmt.Fprintf(&cfg, "disabled_plugins = [%s]\n", disabled)
	fmt.Fprintf(&cfg, "[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n", d.Address, d.Address+".ttrpc")
	if c.cri != nil {
		const cri = `plugins."io.containerd.grpc.v1.cri"`
		// Pause containers get an oom_score_adj below containerd's own,
		// which a host that denies lowering it (a container, some VMs)
		// refuses: keep theirs at containerd's.
		fmt.Fprintf(&cfg, "[%s]\n  restrict_oom_score_adj = true\n", cri)
		if c.sandboxImage != "" {
			fmt.Fprintf(&cfg, "  sandbox_image = %q\n", c.sandboxImage)
		}
		fmt.Fprintf(&cfg, "[%s.containerd]\n  snapshotter = %q\n  disable_snapshot_annotations = false\n", cri, c.cri.snapshotter)
		fmt.Fprintf(&cfg, "[%s.cni]\n  bin_dir = %q\n  conf_dir = %q\n", cri, filepath.Join(dir, "cni", "bin"), filepath.Join(dir, "cni", "conf"))
		for _, h := range c.cri.plainHTTP {
			fmt.Fprintf(&cfg, "[%s.registry.mirrors.%q]\n  endpoint = [%q]\n", cri, h, "http://"+h)
		}
	}
	for name, addr := range c.proxies {
		fmt.Fprintf(&cfg, "[proxy_plugins.%s]\n  type = \"snapshot\"\n  address = %q\n", name, addr)
	}
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	if d.log, err = os.Create(filepath.Join(dir, "containerd.log")); err != nil {
		return nil, err
	}
	d.cmd = exec.Command(bin, "--config", conf)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.log.Close()
		return nil, fmt.Errorf("containerdenv: %w", err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := d.Ctr(ctx, "version"); err == nil {
			return d, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("containerdenv: containerd exited at start; see %s", d.log.Name())
		case <-ctx.Done():
			d.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.Close()
			return nil, fmt.Errorf("containerdenv: containerd did not answer within 30s; see %s", d.log.Name())
		}
	}
}

// Ctr runs ctr against the daemon, in its namespace, and returns what it
// printed.
func (d *Daemon) Ctr(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", d.Address, "--namespace", d.Namespace}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// RunFlags are the flags of `ctr run` that keep a container's state under
// the daemon's directory.
func (d *Daemon) RunFlags() []string {
	return []string{"--fifo-dir", filepath.Join(d.Dir, "fifo"), "--runc-root", filepath.Join(d.Dir, "runc")}
}

// Close stops containerd, then the shims it left, and removes the
// namespace's cgroups.
func (d *Daemon) Close() error {
	var errs []error
	if d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(15 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
		}
	}
	for _, pid := range d.Shims() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, cg := range Cgroups(d.Namespace) {
		if err := removeCgroup(cg); err != nil {
			errs = append(errs, err)
		}
	}
	d.log.Close()
	return errors.Join(errs...)
}

// Shims are the PIDs of shim processes started by this daemon.
func (d *Daemon) Shims() []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("containerd-shim")) || !bytes.Contains(b, []byte(d.Address)) {
			continue
		}
		var pid int
		fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
		pids = append(pids, pid)
	}
	return pids
}

// Cgroups are the cgroup directories of a containerd namespace, in every
// hierarchy (cgroup v1 and v2).
func Cgroups(namespace string) []string {
	var dirs []string
	for _, pat := range []string{"/sys/fs/cgroup/*/" + namespace, "/sys/fs/cgroup/" + namespace} {
		m, _ := filepath.Glob(pat)
		for _, d := range m {
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// removeCgroup removes a cgroup directory and the empty ones under it,
// deepest first (cgroup files cannot be removed, only directories).
func removeCgroup(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("containerdenv: remove cgroup %s: %w", dir, err)
	}
	return nil
}

// Leftovers lists what is still there of a run under dir: mounts under it,
// loop devices whose backing file is under it, and for the namespace,
// cgroups. Empty means clean.
func Leftovers(dir, namespace string) []string {
	var out []string
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], dir) {
				out = append(out, "mount "+f[4])
			}
		}
	}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), dir) {
			out = append(out, "loop device "+strings.Split(f, "/")[3]+" on "+strings.TrimSpace(string(b)))
		}
	}
	for _, cg := range Cgroups(namespace) {
		out = append(out, "cgroup "+cg)
	}
	return out
}

// ContainerCgroups are the cgroups of containers still in the namespace
// (containerd leaves the namespace's own, empty directory behind).
func ContainerCgroups(namespace string) []string {
	var out []string
	for _, ns := range Cgroups(namespace) {
		entries, _ := os.ReadDir(ns)
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, filepath.Join(ns, e.Name()))
			}
		}
	}
	return out
}
