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

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/launch"
)

func main() {
	// A process started to be the init of a program's namespaces does
	// that and nothing else.
	launch.Init()
	os.Exit(execute(newRootCmd()))
}

// execute runs root with the signal handling of the command line and
// returns the exit code. The tests run it with commands of their own.
func execute(root *cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first SIGINT or SIGTERM cancels the command, which then tears
	// down what it made; a second one ends the process at once, as if
	// dejavu had not caught the first (a command blocked where no context
	// reaches, such as opening a FIFO, still stops).
	context.AfterFunc(ctx, stop)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dejavu: %v\n", err)
		return 1
	}
	return 0
}
