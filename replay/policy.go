package replay

import "fmt"

// Policy names a way to replay a trace: how its plan is built (Options)
// and how the plan is fetched (Engine), defined here together.
type Policy string

// Policies.
const (
	PolicyDejavu Policy = "dejavu" // joined, capped, ordered, cache-aware
	PolicyFIFO   Policy = "fifo"   // overlaybd's: recorded order, ≤ 1 MiB reads
)

// ParsePolicy reads a policy's name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case PolicyDejavu, PolicyFIFO:
		return p, nil
	}
	return "", fmt.Errorf("replay: policy %q: want %s or %s", s, PolicyDejavu, PolicyFIFO)
}

// Engine is how a plan is fetched, in the prefetch engine's terms
// (prefetch.WithWorkers, WithBatch, WithPriority, WithFollow).
type Engine struct {
	Workers  int   // requests in flight
	Batch    int64 // bytes of units one request asks for; 0: a unit each
	Priority bool  // hold back while demand reads fetch
	Follow   bool  // jump to where the program reads
}

// Engine returns how the policy's plans are fetched. workers and batch
// are the caller's tuning, which dejavu's policy takes; the fifo policy is
// overlaybd's own replay and fixes them: 16 readers of a unit each, no
// priority, no following the program.
func (p Policy) Engine(workers int, batch int64) (Engine, error) {
	switch p {
	case PolicyDejavu, "":
		return Engine{Workers: workers, Batch: batch, Priority: true, Follow: true}, nil
	case PolicyFIFO:
		return Engine{Workers: 16, Batch: 0, Priority: false, Follow: false}, nil
	}
	return Engine{}, fmt.Errorf("replay: policy %q: want %s or %s", p, PolicyDejavu, PolicyFIFO)
}
