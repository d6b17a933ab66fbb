package reports

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/safefile"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// TestHTMLRendersOffline opens the HTML report in headless Chromium inside
// a network namespace of its own (no network at all, not even loopback
// up) and checks the screenshot: not blank, and the charts' colours are
// on it.
func TestHTMLRendersOffline(t *testing.T) {
	testenv.RequireCommands(t, "chromium", "unshare")
	if os.Geteuid() != 0 {
		testenv.Skip(t, "test needs root for a network namespace")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := HTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--", testenv.LookPath("chromium"),
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1000,1400",
		"--screenshot="+shot, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	if keep := os.Getenv("DEJAVU_SCREENSHOT"); keep != "" {
		if b, err := os.ReadFile(shot); err == nil {
			os.WriteFile(keep, b, 0o644) // to look at it
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colours := map[[3]uint8]int{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			colours[rgb(img, x, y)]++
		}
	}
	// Bars and fetches in their colours: prefetch blue, lazy red, warm
	// amber; each drawn over more than a few pixels.
	for name, c := range map[string][3]uint8{"prefetch": {0x2e, 0x86, 0xab}, "lazy": {0xe4, 0x57, 0x2e}, "warm": {0xf3, 0xa7, 0x12}} {
		if colours[c] < 50 {
			t.Errorf("%s colour on %d pixels of the screenshot", name, colours[c])
		}
	}
	if len(colours) < 10 {
		t.Errorf("a nearly blank screenshot: %d colours", len(colours))
	}
}

func rgb(img image.Image, x, y int) [3]uint8 {
	r, g, b, _ := img.At(x, y).RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}

func TestWriteFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "results.json")
	h, err := WriteFiles(path, sample(), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(path, ".json") + ".html"; h != want {
		t.Fatalf("HTML at %s, want %s", h, want)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if back, err := Read(f); err != nil || len(back.Starts) != len(sample().Starts) {
		t.Fatalf("read back: %v", err)
	}
	if page, err := os.ReadFile(h); err != nil || !strings.Contains(string(page), "<svg") {
		t.Fatalf("HTML report: %v", err)
	}
	// Again: refused without replace, both files left; replaced with it.
	os.WriteFile(h, []byte("old"), 0o644)
	if _, err := WriteFiles(path, sample(), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write without replace: %v", err)
	}
	if b, _ := os.ReadFile(h); string(b) != "old" {
		t.Fatalf("the refused write changed the HTML report")
	}
	if _, err := WriteFiles(path, sample(), true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(h); string(b) == "old" {
		t.Fatalf("the replacing write left the HTML report")
	}
	// The HTML report of x.html would be x.html itself.
	if _, err := WriteFiles(filepath.Join(t.TempDir(), "r.html"), sample(), true); err == nil || !strings.Contains(err.Error(), "must not end in .html") {
		t.Fatalf("results at .html: %v", err)
	}
}

// TestWriteFilesChecksBothFirst: a refused HTML path leaves no JSON
// behind.
func TestWriteFilesChecksBothFirst(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "r.html"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "r.json")
	if _, err := WriteFiles(path, sample(), true); !errors.Is(err, safefile.ErrNotRegular) {
		t.Fatalf("HTML path a directory: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the JSON was written: %v", err)
	}
}
