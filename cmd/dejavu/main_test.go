package main

import (
	"os"
	"testing"

	"github.com/dejavu-project/dejavu/launch"
)

// TestMain lets the test binary serve as the init of programs that
// "dejavu run" starts in-process. With DEJAVU_TEST_MAIN=1 it is the dejavu
// command itself, for tests that need it as a process of its own (its exit
// code).
func TestMain(m *testing.M) {
	if os.Getenv("DEJAVU_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	launch.Init()
	os.Exit(m.Run())
}
