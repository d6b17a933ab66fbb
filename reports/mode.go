package reports

import "fmt"

// Mode is how a start was made. The experiments (package experiment) make
// starts in these modes; the results summarise and render by them.
type Mode string

// Modes.
const (
	ModeFull     Mode = "full"     // the whole layer blobs downloaded first, as a pull does
	ModeLazy     Mode = "lazy"     // fetched on demand only
	ModePrefetch Mode = "prefetch" // the trace replayed with dejavu's policy
	ModeFIFO     Mode = "fifo"     // the trace replayed as overlaybd does
	ModeWarm     Mode = "warm"     // everything in the local cache already
	// ModeLocal starts the same ext4 from a local file on a loop device,
	// without dejavu: what a warm start would cost with no FUSE, no lazy
	// backstore and no decompression in the way.
	ModeLocal Mode = "local"
)

// AllModes are the modes, in the order they are usually compared.
var AllModes = []Mode{ModeFull, ModeLazy, ModePrefetch, ModeFIFO, ModeWarm, ModeLocal}

// ParseMode reads a mode's name.
func ParseMode(s string) (Mode, error) {
	for _, m := range AllModes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("reports: mode %q: want full, lazy, prefetch, fifo, warm or local", s)
}

// Prefetches reports whether starts of the mode replay a trace.
func (m Mode) Prefetches() bool { return m == ModePrefetch || m == ModeFIFO }

// Cold reports whether starts of the mode begin with an empty cache: the
// physical limit bounds only those.
func (m Mode) Cold() bool { return m != ModeWarm && m != ModeLocal }

// Runtime is how an experiment started the workload.
type Runtime string

// Runtimes.
const (
	// RuntimeDejavu mounts the image and starts its program in the
	// experiment's process, as `dejavu run` does.
	RuntimeDejavu Runtime = "dejavu"
	// RuntimeContainerd pulls the image into a containerd of its own with
	// the dejavu snapshotter and starts it with `ctr run`.
	RuntimeContainerd Runtime = "containerd"
)

// ParseRuntime reads a runtime's name.
func ParseRuntime(s string) (Runtime, error) {
	switch r := Runtime(s); r {
	case RuntimeDejavu, RuntimeContainerd:
		return r, nil
	}
	return "", fmt.Errorf("reports: runtime %q: want %s or %s", s, RuntimeDejavu, RuntimeContainerd)
}
