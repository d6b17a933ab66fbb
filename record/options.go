package record

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/launch/timed"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/trace"
)

// DefaultTimeout bounds a start that does not get ready.
const DefaultTimeout = 5 * time.Minute

// Option configures Record and Device.
type Option func(*config)

type config struct {
	recorder  Recorder
	runs      int
	minRuns   int
	workload  string
	program   timed.Program
	mountOpts []lazymount.Option
	refOpts   []imageref.Option
	tool      string
	log       *slog.Logger
	progress  func(Run)
}

func newConfig(opts []Option) config {
	c := config{recorder: Backstore, runs: 1, minRuns: 1, workload: "default",
		program: timed.Program{Timeout: DefaultTimeout}, tool: "dejavu", log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Run is one recorded start, as Record reports it when it is done.
type Run struct {
	N      int // from 1
	Timing timed.Timing
	Trace  *trace.Trace // this run's alone
}

// Recorder is what sees a start's reads.
type Recorder string

// Recorders, named as traces name them.
const (
	Backstore Recorder = trace.RecorderBackstore // dejavu's own device reports every read
	EBPF      Recorder = trace.RecorderEBPF      // an eBPF program on the block layer
)

// ParseRecorder reads a recorder's name.
func ParseRecorder(s string) (Recorder, error) {
	switch r := Recorder(s); r {
	case Backstore, EBPF:
		return r, nil
	}
	return "", fmt.Errorf("record: recorder %q: want %s or %s", s, Backstore, EBPF)
}

// WithRecorder chooses what sees the reads (default Backstore).
func WithRecorder(r Recorder) Option { return func(c *config) { c.recorder = r } }

// WithRuns sets how many starts are recorded (default 1).
func WithRuns(n int) Option { return func(c *config) { c.runs = n } }

// WithMinRuns keeps the ranges read in at least n of the runs (default 1:
// every range read in any run).
func WithMinRuns(n int) Option { return func(c *config) { c.minRuns = n } }

// WithWorkload names the workload in the trace (default "default").
func WithWorkload(name string) Option { return func(c *config) { c.workload = name } }

// WithCommand is the program to start; none (the default): the image's
// entrypoint and command.
func WithCommand(args ...string) Option { return func(c *config) { c.program.Args = args } }

// WithReady is when a start counts as ready (default: the program exits 0).
func WithReady(p launch.Probe) Option { return func(c *config) { c.program.Ready = p } }

// WithTimeout bounds a start that does not get ready (default
// DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.program.Timeout = d } }

// WithOutput receives the program's standard output and error (default:
// discarded).
func WithOutput(stdout, stderr io.Writer) Option {
	return func(c *config) { c.program.Stdout, c.program.Stderr = stdout, stderr }
}

// WithMountOptions are passed to every start's mount (registry, cache
// limit, retries, state directory, metrics). Each run still gets an empty
// cache of its own and no prefetch: a recording is of a cold, lazy start.
func WithMountOptions(o ...lazymount.Option) Option {
	return func(c *config) { c.mountOpts = append(c.mountOpts, o...) }
}

// WithRefOptions sets how registries are reached by Device, which opens
// the image without mounting it.
func WithRefOptions(o ...imageref.Option) Option {
	return func(c *config) { c.refOpts = append(c.refOpts, o...) }
}

// WithTool names what recorded the trace, stored in it (default "dejavu").
func WithTool(name string) Option { return func(c *config) { c.tool = name } }

// WithLogger sets the logger (default: none).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithProgress is called after each recorded start.
func WithProgress(f func(Run)) Option { return func(c *config) { c.progress = f } }
