package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Several results files make a suite: one row each, named by workload and
// link, in the order given; HTML renders one experiment only.
func TestReportSuite(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, r := range []struct{ workload, profile, rtt string }{{"py", "slow", "50ms"}, {"web", "", "7ms"}} {
		p := filepath.Join(dir, r.workload+".json")
		res := `{"image":"reg/` + r.workload + `","workload":"` + r.workload + `","profile":"` + r.profile + `","ready":"exit","rtt":"` + r.rtt +
			`","bandwidthBytesPerSecond":1048576,"runs":1,"starts":[{"mode":"lazy","run":1,"seconds":6,"neededBytes":1048576},` +
			`{"mode":"prefetch","run":1,"seconds":2,"neededBytes":1048576,"timeline":[{"at":0.1,"took":1,"first":0.1,"cause":"prefetch","bytes":1,"ranges":1}]}]}`
		if err := os.WriteFile(p, []byte(res), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	table, _ := dejavu(t, append([]string{"report"}, files...)...)
	py, web := strings.Index(table, "py"), strings.Index(table, "web")
	if py < 0 || web < py || !strings.Contains(table, "slow") || !strings.Contains(table, "7ms, 8.388608 Mbit/s") || !strings.Contains(table, "3.00x") {
		t.Errorf("suite table:\n%s", table)
	}
	out, _ := dejavu(t, append([]string{"report", "-o", "json"}, files...)...)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 || rows[0]["workload"] != "py" || rows[0]["speedupVsLazy"] != 3.0 {
		t.Errorf("suite JSON %v: %s", err, out)
	}
	if err := dejavuErr(t, append([]string{"report", "-o", "html"}, files...)...); !strings.Contains(err.Error(), "a suite") {
		t.Errorf("suite as HTML: %v", err)
	}
}
