package main

import (
	"os"
	"testing"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/launch"
)

// TestMain lets the test binary serve as the init of programs that
// "dejavu run" starts in-process. With DEJAVU_TEST_MAIN=1 it is the dejavu
// command itself, for tests that need it as a process of its own (its exit
// code).
func TestMain(m *testing.M) {
	switch os.Getenv("DEJAVU_TEST_MAIN") {
	case "1":
		main()
		os.Exit(0)
	case "blocked":
		launch.Init()
		os.Exit(execute(blockedRootCmd()))
	}
	launch.Init()
	os.Exit(m.Run())
}

// blockedRootCmd is the dejavu command with one more, "test-blocked FIFO",
// that blocks where no context reaches (open(2) of a FIFO nobody writes),
// as a hung file system or a stuck system call would: what the second
// signal must still end. No command of dejavu's own blocks so any more.
func blockedRootCmd() *cobra.Command {
	root := newRootCmd()
	root.AddCommand(&cobra.Command{
		Use:  "test-blocked FIFO",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err == nil {
				f.Close()
			}
			return err
		},
	})
	return root
}
