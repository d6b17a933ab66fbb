package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// mountedDev reports whether path is a mount point and, if so, the
// "major:minor" of the file system on top there, from mountinfo.
func mountedDev(path string) (dev string, ok bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// Later lines are mounted over earlier ones: the last match wins.
		if len(f) > 4 && unescapeMount(f[4]) == path {
			dev, ok = f[2], true
		}
	}
	return dev, ok
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

// loopsBackedBy returns the loop devices attached to file, by their
// "major:minor". Looking them up (rather than trusting the state file)
// also finds a device attached just before its owner died.
func loopsBackedBy(file string) map[string]string {
	out := map[string]string{}
	dirs, _ := filepath.Glob("/sys/block/loop*")
	for _, d := range dirs {
		dev := "/dev/" + filepath.Base(d)
		if loopBacking(dev) != file {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "dev")); err == nil {
			out[strings.TrimSpace(string(b))] = dev
		}
	}
	return out
}

// loopBacking returns the file a loop device is attached to ("" if none).
func loopBacking(dev string) string {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procStat returns a process's start time (clock ticks after boot) and
// whether it is a zombie, which still answers signals but owns nothing.
func procStat(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, err
	}
	// The command name may hold spaces and parentheses; fields resume
	// after the last ')': state is field 3, starttime field 22.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("device: /proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, false, fmt.Errorf("device: /proc/%d/stat: unexpected format", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("device: /proc/%d/stat: %w", pid, err)
	}
	return start, f[0] == "Z" || f[0] == "X", nil
}

// run runs a system program, with its output in the error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	path, err := lookPath(name)
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// lookPath finds a program on PATH or in the sbin directories, which a
// non-root PATH often lacks.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New(name + " not found (install util-linux and mount)")
}
