package reports

import "testing"

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"full", ModeFull, false},
		{"lazy", ModeLazy, false},
		{"prefetch", ModePrefetch, false},
		{"fifo", ModeFIFO, false},
		{"warm", ModeWarm, false},
		{"local", ModeLocal, false},
		{"", "", true},
		{"Lazy", "", true},
		{"cold", "", true},
	} {
		got, err := ParseMode(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseMode(%q) = %q, %v", tc.in, got, err)
		}
	}
	if !ModeFIFO.Prefetches() || !ModePrefetch.Prefetches() || ModeLazy.Prefetches() || ModeWarm.Cold() || ModeLocal.Cold() || !ModeFull.Cold() {
		t.Error("mode properties")
	}
	for _, s := range []string{"dejavu", "containerd"} {
		if r, err := ParseRuntime(s); err != nil || string(r) != s {
			t.Errorf("ParseRuntime(%q) = %q, %v", s, r, err)
		}
	}
	if _, err := ParseRuntime("docker"); err == nil {
		t.Error("runtime docker accepted")
	}
}
