package metricstest

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Scrape fetches http://addr/metrics and returns each sample's value by
// its series, name and labels as exposed (`dejavu_fetches_total{cause="prefetch"}`).
func Scrape(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", addr, resp.Status)
	}
	m, err := Parse(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	return m
}

// Parse reads an exposition: comments are skipped, every other line is a
// series and its value.
func Parse(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndex(line, " "); i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}
