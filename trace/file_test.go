package trace

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/internal/safefile"
)

// TestReadFileRefusesNonRegular: ReadFile, which every trace file goes
// through (--trace FILE of a start included), refuses a FIFO nobody writes
// at once instead of blocking in open(2), and a character device too.
func TestReadFileRefusesNonRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(path); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, safefile.ErrNotRegular) {
				t.Errorf("ReadFile(%s): %v; want an error wrapping ErrNotRegular", path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadFile(%s) still blocked after 5 s", path)
		}
	}
}
