package experiment

import (
	"testing"
	"time"
)

func TestProfiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		rtt  time.Duration
		mbit int64
	}{
		{"cross-region", 20 * time.Millisecond, 100},
		{"slow", 50 * time.Millisecond, 25},
		{"same-region", 2 * time.Millisecond, 1000},
	} {
		p, err := ProfileNamed(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if p.RTT != tc.rtt || p.Bandwidth*8 != tc.mbit*1e6 {
			t.Errorf("%s: %v, %d B/s; want %v, %d Mbit/s", tc.name, p.RTT, p.Bandwidth, tc.rtt, tc.mbit)
		}
	}
	if _, err := ProfileNamed("moon"); err == nil {
		t.Error("profile moon accepted")
	}
	Profiles()[0].Name = "changed"
	if Profiles()[0].Name != "cross-region" {
		t.Error("Profiles shares its table with callers")
	}
}
