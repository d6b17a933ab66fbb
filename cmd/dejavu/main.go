// Command dejavu makes lazily loaded overlaybd images start at local-disk
// speed: it builds and inspects images, records what a start reads, and
// prefetches it at the next cold start.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dejavu-project/dejavu/launch"
)

func main() {
	// A process started to be the init of a program's namespaces does
	// that and nothing else.
	launch.Init()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dejavu: %v\n", err)
		os.Exit(1)
	}
}
