package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Spec says what to start and when it is ready.
type Spec struct {
	RootFS   string    // the image's root file system, read-only
	Config   v1.Config // Env, Entrypoint, Cmd, WorkingDir, User
	Args     []string  // replaces the image's command when set
	Ready    Probe
	Timeout  time.Duration // for readiness; 0: none
	Stdout   io.Writer
	Stderr   io.Writer
	WorkDir  string // where the writable layer goes (default: the system's temp dir)
	Hostname string // default "dejavu"
}

// defaultPath is the PATH a program gets when its image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// argv is the command line: entrypoint then command, or the override.
func (s Spec) argv() ([]string, error) {
	var argv []string
	if len(s.Args) > 0 {
		argv = s.Args
		if len(s.Config.Entrypoint) > 0 {
			argv = append(append([]string{}, s.Config.Entrypoint...), s.Args...)
		}
	} else {
		argv = append(append([]string{}, s.Config.Entrypoint...), s.Config.Cmd...)
	}
	if len(argv) == 0 {
		return nil, errors.New("launch: the image has no entrypoint or command, and none was given")
	}
	return argv, nil
}

// Process is a started program.
type Process struct {
	spec    Spec
	cmd     *exec.Cmd
	work    string
	stderr  *tailBuffer
	started time.Time

	done     chan struct{}
	exitCode int
	waitErr  error
	stopOnce sync.Once
}

// Start starts the program in its namespaces. Call Stop (or Wait) to end it.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	argv, err := spec.argv()
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(spec.RootFS); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("launch: root file system %s is not a directory", spec.RootFS)
	}
	work, err := os.MkdirTemp(spec.WorkDir, "dejavu-launch-")
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			os.RemoveAll(work)
			return nil, err
		}
	}
	env := spec.Config.Env
	if !hasPath(env) {
		env = append([]string{defaultPath}, env...)
	}
	host := spec.Hostname
	if host == "" {
		host = "dejavu"
	}
	cs, _ := json.Marshal(childSpec{Lower: spec.RootFS, Work: work, Argv: argv, Env: env, Dir: spec.Config.WorkingDir, User: spec.Config.User, Hostname: host})
	pr, pw, err := os.Pipe()
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	p := &Process{spec: spec, work: work, stderr: &tailBuffer{max: 4096}, done: make(chan struct{})}
	cmd := exec.Command(self)
	cmd.Args = []string{"dejavu-init"}
	cmd.Env = append(os.Environ(), initEnv+"=1")
	cmd.ExtraFiles = []*os.File{pr}
	cmd.Stdout = spec.Stdout
	cmd.Stderr = io.MultiWriter(p.stderr, orDiscard(spec.Stderr))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
		Pdeathsig:  syscall.SIGKILL,
	}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		os.RemoveAll(work)
		return nil, fmt.Errorf("launch: start: %w", err)
	}
	pr.Close()
	pw.Write(cs)
	pw.Close()
	p.cmd = cmd
	go func() {
		err := cmd.Wait()
		p.exitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.exitCode = 128 + int(ws.Signal())
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			p.waitErr = err
		}
		close(p.done)
	}()
	return p, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func hasPath(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

// WaitReady waits until the probe passes, the program dies, the timeout
// passes or ctx ends, and returns how long the program took to be ready.
func (p *Process) WaitReady(ctx context.Context) (time.Duration, error) {
	if p.spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.spec.Timeout)
		defer cancel()
	}
	if p.spec.Ready.Kind == ProbeExit {
		select {
		case <-p.done:
			if err := p.exitError(); err != nil {
				return 0, err
			}
			return time.Since(p.started), nil
		case <-ctx.Done():
			return 0, fmt.Errorf("launch: not ready (program still running): %w", context.Cause(ctx))
		}
	}
	interval := 10 * time.Millisecond
	for {
		if p.spec.Ready.check(ctx) {
			return time.Since(p.started), nil
		}
		select {
		case <-p.done:
			if err := p.exitError(); err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("launch: program exited before %s passed", p.spec.Ready)
		case <-ctx.Done():
			return 0, fmt.Errorf("launch: %s did not pass: %w", p.spec.Ready, context.Cause(ctx))
		case <-time.After(interval):
		}
		interval = min(2*interval, 100*time.Millisecond)
	}
}

func (p *Process) exitError() error {
	if p.waitErr != nil {
		return fmt.Errorf("launch: %w", p.waitErr)
	}
	if p.exitCode != 0 {
		tail := strings.TrimSpace(p.stderr.String())
		if tail != "" {
			tail = ": " + tail
		}
		return fmt.Errorf("launch: program exited with status %d%s", p.exitCode, tail)
	}
	return nil
}

// Stop ends the program (SIGTERM, then SIGKILL after grace) and removes its
// writable layer. Its mounts lived in its own namespace and are gone with it.
func (p *Process) Stop(grace time.Duration) error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(grace):
				// Killing a PID namespace's init kills everything in it.
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		os.RemoveAll(p.work)
	})
	return nil
}

// ExitCode returns the program's exit status once it has ended.
func (p *Process) ExitCode() int {
	<-p.done
	return p.exitCode
}

// Result is one timed start.
type Result struct {
	Ready    time.Duration // from Start to ready
	ExitCode int           // -1 when the program was stopped while running
}

// Run starts the program, waits until ready, stops it and cleans up.
func Run(ctx context.Context, spec Spec) (Result, error) {
	p, err := Start(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	defer p.Stop(5 * time.Second)
	d, err := p.WaitReady(ctx)
	if err != nil {
		return Result{}, err
	}
	res := Result{Ready: d, ExitCode: -1}
	select {
	case <-p.done:
		res.ExitCode = p.exitCode
	default:
	}
	return res, nil
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if t.buf.Len() > t.max {
		rest := t.buf.Bytes()[t.buf.Len()-t.max:]
		t.buf = *bytes.NewBuffer(append([]byte{}, rest...))
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
