package main

import (
	"os"
	"testing"

	"github.com/dejavu-project/dejavu/launch"
)

// TestMain lets the test binary serve as the init of programs that
// "dejavu run" starts in-process.
func TestMain(m *testing.M) {
	launch.Init()
	os.Exit(m.Run())
}
