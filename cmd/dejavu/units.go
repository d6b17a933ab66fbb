package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dejavu-project/dejavu/reports"
)

// parseSize reads sizes such as 4096, 4k, 4KiB, 32K, 1.5GiB, 64G (binary
// units: a size here is always a power-of-two multiple).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	lower := strings.ToLower(t)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1}} {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q (examples: 4096, 32KiB, 64GiB)", s)
	}
	n := f * float64(mult)
	if n > 1<<62 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n), nil
}

// humanBytes prints n in binary units: 627.5 KiB, 64 GiB. Sizes are
// formatted in one place, reports.HumanBytes, so that the commands' output
// and the reports read alike; this is its short name for the commands.
func humanBytes(n int64) string { return reports.HumanBytes(n) }
