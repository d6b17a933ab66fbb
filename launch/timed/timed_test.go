package timed

import (
	"context"
	"os"
	"testing"
)

func TestDropPageCache(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("DEJAVU_REQUIRE_PRIVILEGED") != "" {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
	if err := DropPageCache(); err != nil {
		t.Fatal(err)
	}
}

// A start that cannot mount fails with the mount's error and leaves no
// directory behind.
func TestStartBadRef(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if _, err := Start(context.Background(), "not a reference!", Program{}); err == nil {
		t.Fatal("started an image with a bad reference")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("left %d entries in the temporary directory", len(left))
	}
}
