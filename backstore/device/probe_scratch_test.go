package device

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dejavu-project/dejavu/internal/testenv"
)

type sizeSource struct {
	*fileSource
	mu   sync.Mutex
	hist map[int]int
}

func (s *sizeSource) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	s.hist[len(p)]++
	s.mu.Unlock()
	return s.fileSource.ReadAt(p, off)
}

func TestProbeSizes(t *testing.T) {
	tree := t.TempDir()
	b := make([]byte, 64<<20)
	rand.Read(b)
	os.WriteFile(filepath.Join(tree, "big"), b, 0o644)
	image := filepath.Join(t.TempDir(), "fs.ext4")
	out, err := exec.Command(testenv.LookPath("mke2fs"), "-q", "-t", "ext4", "-b", "4096", "-O", "^has_journal", "-d", tree, image, "96M").CombinedOutput()
	if err != nil {
		t.Fatal(err, string(out))
	}
	src := &sizeSource{fileSource: openSource(t, image), hist: map[int]int{}}
	target := filepath.Join(t.TempDir(), "mnt")
	d, err := Mount(context.Background(), src, target, WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	q, _ := os.ReadFile("/sys/block/" + filepath.Base(d.LoopDevice()) + "/queue/max_sectors_kb")
	ra, _ := os.ReadFile("/sys/block/" + filepath.Base(d.LoopDevice()) + "/queue/read_ahead_kb")
	t.Logf("max_sectors_kb=%s ra=%s", q, ra)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	t.Logf("%s", mi)
	os.ReadFile(filepath.Join(target, "big"))
	t.Logf("%v", src.hist)
}
