package reports

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/prefetch"
)

// sample is a results file shaped like dejavu bench's, with made-up but
// consistent numbers.
func sample() *Results {
	r := &Results{Image: "127.0.0.1:5000/py:bench", Ready: "exit", RTT: "20ms", Bandwidth: 12_500_000, Runs: 5}
	times := map[Mode][]float64{
		"full":     {60, 59, 61, 58, 62},
		"lazy":     {14, 13, 15, 12, 16},
		"prefetch": {5, 4, 6, 4.5, 5.5},
		"warm":     {1.5, 1.4, 1.6, 1.3, 1.7},
	}
	for run := 0; run < 5; run++ {
		for _, m := range []Mode{ModeFull, ModeLazy, ModePrefetch, ModeWarm} {
			s := Start{Mode: m, Run: run + 1, Seconds: times[m][run], Requests: int64(10 * (run + 1)), Fetched: 1 << 20, ReadBytes: 2 << 20}
			if m != "warm" {
				s.NeededBytes = 50 << 20
			}
			if m == "prefetch" {
				s.Prefetch = &prefetch.Report{Hit: 100 + run, Partial: 10, Miss: run, Wasted: int64(run) << 10}
				s.Timeline = []Fetch{{At: 0.1, Took: 0.5, Cause: "prefetch", Bytes: 2 << 20, Ranges: 12}, {At: 0.2, Took: 0.1, Cause: "demand", Bytes: 256 << 10, Ranges: 1},
					{At: 0.3, Took: 0.4, Cause: "prefetch", Bytes: 2 << 20, Ranges: 30}}
			}
			r.Starts = append(r.Starts, s)
		}
	}
	r.Summarize(20 * time.Millisecond)
	return r
}

func TestSummarize(t *testing.T) {
	r := sample()
	got := map[Mode]ModeSummary{}
	for _, m := range r.Summary {
		got[m.Mode] = m
	}
	lazy, pf := got["lazy"], got["prefetch"]
	if lazy.MedianSeconds != 14 || lazy.MinSeconds != 12 || lazy.MaxSeconds != 16 || lazy.P90Seconds != 16 {
		t.Errorf("lazy: %+v", lazy)
	}
	if pf.MedianSeconds != 5 || pf.VsLazy != 14.0/5 || pf.VsFull != 60.0/5 {
		t.Errorf("prefetch: %+v", pf)
	}
	if pf.Hit != 102 || pf.Miss != 2 || pf.WastedBytes != 2<<10 || pf.MedianRequests != 30 {
		t.Errorf("prefetch outcomes: %+v", pf)
	}
	// 50 MiB at 12.5 MB/s plus 20 ms.
	if want := float64(50<<20)/12.5e6 + 0.02; r.PhysicalLimitSeconds != want || r.NeededBytes != 50<<20 {
		t.Errorf("limit %v for %d bytes, want %v", r.PhysicalLimitSeconds, r.NeededBytes, want)
	}
	if len(r.Summary) != 4 || r.Summary[0].Mode != "full" {
		t.Errorf("modes out of order: %+v", r.Summary)
	}
}

func TestTableAndMarkdown(t *testing.T) {
	r := sample()
	var txt, md bytes.Buffer
	if err := Table(&txt, r, false); err != nil {
		t.Fatal(err)
	}
	if err := Table(&md, r, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"prefetch", "5.000s", "2.80x", "102/10/2", "physical limit 4.214s", "100 Mbit/s"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, txt.String())
		}
	}
	if !regexp.MustCompile(`(?m)^\|\s*prefetch\s*\|`).MatchString(md.String()) {
		t.Errorf("not a Markdown table:\n%s", md.String())
	}
}

func TestJSONRoundTripAndBadInput(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Starts) != len(r.Starts) || back.Summary[2].VsLazy != r.Summary[2].VsLazy || len(back.Starts[2].Timeline) != 3 {
		t.Fatal("results changed on the way through JSON")
	}
	for _, bad := range []string{``, `{}`, `{"starts":[{"mode":""}]}`, `{"starts":[{"mode":"lazy","seconds":-1}]}`, `[1,2]`, `{"starts":`} {
		if _, err := Read(strings.NewReader(bad)); err == nil {
			t.Errorf("read %q", bad)
		}
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	r := sample()
	r.Image = `<script>alert(1)</script>`
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Contains(page, "<script>") {
		t.Error("the image name reached the page unescaped")
	}
	// Nothing to fetch: no src or href attributes, no url(), no imports.
	if m := regexp.MustCompile(`(?i)(src=|href=|url\(|@import)`).FindString(page); m != "" {
		t.Errorf("the page refers to something outside it: %q", m)
	}
	if n := strings.Count(page, "<svg"); n != 2 { // the bars and one timeline (only prefetch has one)
		t.Errorf("%d charts", n)
	}
	if n := strings.Count(page, "<rect"); n < 4+3 {
		t.Errorf("%d bars drawn", n)
	}
}

func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	WriteJSON(&b, sample())
	f.Add(b.Bytes())
	f.Add([]byte(`{"starts":[{"mode":"lazy","seconds":1e308}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		r.Summarize(time.Millisecond)
		var out bytes.Buffer
		if err := Table(&out, r, false); err != nil {
			t.Fatal(err)
		}
		if err := HTML(&out, r); err != nil {
			t.Fatal(err)
		}
	})
}

// endless is a stream that never ends: a string that is never closed.
type endless struct{ started bool }

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	if !e.started {
		n = copy(p, `{"image": "`)
		e.started = true
	}
	for i := n; i < len(p); i++ {
		p[i] = 'a'
	}
	return len(p), nil
}

// TestReadEndlessStream: results that never end are refused at the bound
// with an error saying so, not after reading without limit.
func TestReadEndlessStream(t *testing.T) {
	_, err := Read(&endless{})
	if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("Read of an endless stream: %v", err)
	}
}
