package netshape

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// setup starts the embedded registry with one 4 MiB blob, and a proxy.
func setup(t *testing.T, opts ...Option) (*Proxy, string, []byte) {
	t.Helper()
	reg := testreg.Start(t)
	img, _ := random.Image(4<<20, 1)
	ref, _ := name.ParseReference(reg.Addr + "/r:t")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	l, _ := img.Layers()
	d, _ := l[0].Digest()
	rc, _ := l[0].Compressed()
	blob, _ := io.ReadAll(rc)
	p, err := Start("http://"+reg.Addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, p.URL() + "/v2/r/blobs/" + d.String(), blob
}

func get(t *testing.T, c *http.Client, url, rng string) (*http.Response, []byte, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestRangePassesAndCounts(t *testing.T) {
	p, url, blob := setup(t)
	resp, b, err := get(t, http.DefaultClient, url, "bytes=10-19")
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, blob[10:20]) {
		t.Fatalf("range: %v %v %q", err, resp, b)
	}
	s := p.Stats()
	if s.Requests != 1 || s.BlobRanges != 1 || s.Bytes != 10 {
		t.Fatalf("stats %+v", s)
	}
	if r := p.Requests(); len(r) != 1 || r[0].Range != "bytes=10-19" || r[0].Status != 206 {
		t.Fatalf("log %+v", r)
	}
	p.Reset()
	if p.Stats().Requests != 0 {
		t.Fatal("reset")
	}
}

func TestRTTAndBandwidth(t *testing.T) {
	p, url, blob := setup(t, WithRTT(50*time.Millisecond))
	start := time.Now()
	for i := 0; i < 10; i++ {
		if _, _, err := get(t, http.DefaultClient, url, "bytes=0-99"); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Fatalf("10 requests at 50 ms RTT took %v", el)
	}
	p.SetRTT(0)
	p.SetBandwidth(8 << 20)
	start = time.Now()
	if _, b, err := get(t, http.DefaultClient, url, ""); err != nil || !bytes.Equal(b, blob) {
		t.Fatalf("whole blob: %v, %d bytes", err, len(b))
	}
	ideal := time.Duration(float64(len(blob)) / (8 << 20) * float64(time.Second))
	el := time.Since(start)
	if el < ideal*9/10 {
		t.Fatalf("%d bytes at 8 MiB/s took %v, want at least %v", len(blob), el, ideal*9/10)
	}
	// One stream gets the whole link: pacing must not lose the time its
	// sleeps overshoot (at 100 Mbit/s it once got 60% of it).
	p.SetBandwidth(12_500_000)
	ideal = time.Duration(float64(len(blob)) / 12.5e6 * float64(time.Second))
	start = time.Now()
	if _, _, err := get(t, http.DefaultClient, url, ""); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > ideal*7/5 {
		t.Errorf("%d bytes at 100 Mbit/s on one stream took %v, want at most %v", len(blob), el, ideal*7/5)
	}
}

func TestFaults(t *testing.T) {
	p, url, blob := setup(t)
	client := &http.Client{Timeout: 500 * time.Millisecond}
	for _, k := range []FaultKind{Fault5xx, FaultReset, FaultStall, FaultFlip} {
		p.SetFaults(Faults{Rate: 1, Kinds: []FaultKind{k}, Seed: 1, StallFor: 2 * time.Second})
		resp, b, err := get(t, client, url, "bytes=0-1048575")
		switch k {
		case Fault5xx:
			if err != nil || resp.StatusCode != 503 {
				t.Errorf("5xx: %v %v", err, resp)
			}
		case FaultReset, FaultStall:
			if err == nil {
				t.Errorf("%v: no error, %d bytes", k, len(b))
			}
		case FaultFlip:
			if err != nil || len(b) != 1<<20 {
				t.Fatalf("flip: %v, %d bytes", err, len(b))
			}
			diff := 0
			for i := range b {
				if b[i] != blob[i] {
					diff++
				}
			}
			if diff != 1 {
				t.Errorf("flip changed %d bytes, want 1", diff)
			}
		}
	}
	// The rate holds approximately.
	p.SetFaults(Faults{Rate: 0.2, Kinds: []FaultKind{Fault5xx}, Seed: 7})
	p.Reset()
	bad := 0
	for i := 0; i < 500; i++ {
		resp, _, err := get(t, http.DefaultClient, url, "bytes=0-9")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 503 {
			bad++
		}
	}
	if bad < 70 || bad > 130 {
		t.Errorf("%d of 500 failed at rate 0.2", bad)
	}
	if got := p.Stats().Faults["5xx"]; got != int64(bad) {
		t.Errorf("counted %d faults, saw %d", got, bad)
	}
}

// Unshaped lifts the delay until restored: ten requests at a 2 s RTT would
// take 20 s; unshaped they must not take even one RTT, and after the
// restore one request takes the RTT again.
func TestUnshaped(t *testing.T) {
	p, url, _ := setup(t, WithRTT(2*time.Second), WithBandwidth(1024))
	restore := p.Unshaped()
	start := time.Now()
	for i := 0; i < 10; i++ {
		if _, _, err := get(t, http.DefaultClient, url, "bytes=0-4095"); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el >= 2*time.Second {
		t.Errorf("10 unshaped requests took %v, one RTT or more", el)
	}
	restore()
	start = time.Now()
	if _, _, err := get(t, http.DefaultClient, url, "bytes=0-9"); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("a request after the restore took %v, less than the RTT", el)
	}
}
