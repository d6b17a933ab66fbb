package launch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// initEnv marks a process started to be a namespace's init.
const initEnv = "_DEJAVU_LAUNCH_INIT"

// childSpec is what the init needs, passed on fd 3 as JSON.
type childSpec struct {
	Lower    string   `json:"lower"`
	Work     string   `json:"work"` // holds upper/, work/ and root/
	Argv     []string `json:"argv"`
	Env      []string `json:"env"`
	Dir      string   `json:"dir"`
	User     string   `json:"user"`
	Hostname string   `json:"hostname"`
}

// IsInit reports whether this process was started as a namespace init.
func IsInit() bool { return os.Getenv(initEnv) == "1" }

// Init runs the namespace init when this process is one, and never returns
// then; otherwise it returns at once.
func Init() {
	if !IsInit() {
		return
	}
	code, err := runInit()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dejavu launch: %v\n", err)
		os.Exit(127)
	}
	os.Exit(code)
}

func runInit() (int, error) {
	f := os.NewFile(3, "spec")
	var cs childSpec
	if err := json.NewDecoder(f).Decode(&cs); err != nil {
		return 0, fmt.Errorf("read spec: %w", err)
	}
	f.Close()
	if err := setupRoot(cs); err != nil {
		return 0, err
	}
	if err := unix.Sethostname([]byte(cs.Hostname)); err != nil {
		return 0, fmt.Errorf("sethostname: %w", err)
	}
	cred, err := resolveUser(cs.User)
	if err != nil {
		return 0, err
	}
	dir := cs.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("working directory %s: %w", dir, err)
	}
	if cred != nil {
		os.Lchown(dir, int(cred.Uid), int(cred.Gid))
	}
	path := cs.Argv[0]
	if !strings.Contains(path, "/") {
		p, err := lookPathIn(path, cs.Env)
		if err != nil {
			return 0, err
		}
		path = p
	}
	cmd := &exec.Cmd{Path: path, Args: cs.Argv, Env: cs.Env, Dir: dir, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", path, err)
	}
	pid := cmd.Process.Pid
	go func() {
		for s := range sigs {
			syscall.Kill(-pid, s.(syscall.Signal))
		}
	}()
	// As PID 1, reap every orphan; the program's own status is the result.
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err != nil {
			return 0, fmt.Errorf("wait: %w", err)
		}
		if got != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

// setupRoot builds the overlay root with /proc, /sys and /dev and switches
// into it.
func setupRoot(cs childSpec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	upper, work, root := filepath.Join(cs.Work, "upper"), filepath.Join(cs.Work, "work"), filepath.Join(cs.Work, "root")
	opts := "lowerdir=" + cs.Lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay (%s): %w", opts, err)
	}
	mkdir := func(p string) error { return os.MkdirAll(filepath.Join(root, p), 0o755) }
	for _, d := range []string{"proc", "sys", "dev", "tmp", ".oldroot"} {
		if err := mkdir(d); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := unix.Mount("sysfs", filepath.Join(root, "sys"), "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /sys: %w", err)
	}
	dev := filepath.Join(root, "dev")
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		p := filepath.Join(dev, n)
		if f, err := os.Create(p); err == nil {
			f.Close()
		}
		if err := unix.Mount("/dev/"+n, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", n, err)
		}
	}
	os.MkdirAll(filepath.Join(dev, "shm"), 0o1777)
	if err := unix.Mount("shm", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	for l, t := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		os.Symlink(t, filepath.Join(dev, l))
	}
	if err := unix.PivotRoot(root, filepath.Join(root, ".oldroot")); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/.oldroot", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	os.Remove("/.oldroot")
	return nil
}

// resolveUser turns "uid[:gid]" or "name[:group]" into credentials, names
// looked up in the image's /etc/passwd and /etc/group. Empty means root.
func resolveUser(spec string) (*syscall.Credential, error) {
	if spec == "" {
		return nil, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, gid, err := lookupID("/etc/passwd", u, true)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", spec, err)
	}
	if hasGroup {
		if gid, _, err = lookupID("/etc/group", g, false); err != nil {
			return nil, fmt.Errorf("user %q: %w", spec, err)
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// lookupID finds name (or a number) in a passwd- or group-style file and
// returns its id and, for passwd, its primary group.
func lookupID(file, name string, passwd bool) (int, int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		gid := n
		// A numeric user still takes its primary group when it is listed.
		if passwd {
			if _, g, err := scanIDFile(file, func(f []string) bool { return f[2] == name }); err == nil {
				gid = g
			}
		}
		return n, gid, nil
	}
	return scanIDFile(file, func(f []string) bool { return f[0] == name })
}

func scanIDFile(file string, match func([]string) bool) (int, int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 || !match(fields) {
			continue
		}
		id, err := strconv.Atoi(fields[2])
		if err != nil {
			return 0, 0, fmt.Errorf("%s: bad id %q", file, fields[2])
		}
		gid := id
		if len(fields) > 3 {
			if g, err := strconv.Atoi(fields[3]); err == nil {
				gid = g
			}
		}
		return id, gid, nil
	}
	return 0, 0, fmt.Errorf("not found in %s", file)
}

// lookPathIn finds a program on the PATH of env, inside the new root.
func lookPathIn(name string, env []string) (string, error) {
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH %s", name, path)
}
