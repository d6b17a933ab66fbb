package main

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"4096": 4096, "4k": 4096, "4KiB": 4096, " 32K ": 32 << 10, "1.5GiB": 3 << 29, "64G": 64 << 30, "2 MiB": 2 << 20, "7b": 7, "1TiB": 1 << 40,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"": "bad size", "-1k": "bad size", "4x": "bad size", "KiB": "bad size", "9000000TiB": "too large"} {
		if _, err := parseSize(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseSize(%q): %v, want an error saying %q", in, err, want)
		}
	}
	if got := humanBytes(3 << 29); got != "1.5 GiB" {
		t.Errorf("humanBytes(1.5 GiB) = %q", got)
	}
}
