package snapshotter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/trace"
)

const rulesFile = `
[[images]]
match = "reg.example.com/shop/*"
workload = "web"

[[images]]
match = "reg.example.com/batch/*"
trace = "none"

[[images]]
match = "reg.example.com/*"
trace = "sha256:562852c4ae69c79b0b7481717906fa85bce4f93cc453117a88b2cb6665df2895"
`

func TestConfigChooses(t *testing.T) {
	c, err := ParseConfig([]byte(rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	auto := choice{trace: trace.SourceSpec{Kind: trace.SourceAuto}}
	for _, tc := range []struct {
		image     string
		labels    map[string]string
		wantTrace trace.SourceKind
		wantWork  string
	}{
		{"reg.example.com/shop/cart@" + dgst, nil, trace.SourceAuto, "web"},
		{"reg.example.com/batch/nightly@" + dgst, nil, trace.SourceNone, ""},
		// "*" does not cross a "/": the third rule, not the first.
		{"reg.example.com/shop/a/b@" + dgst, nil, trace.SourceAuto, ""},
		{"reg.example.com/app@" + dgst, nil, trace.SourceDigest, ""},
		{"other.example.com/shop/cart@" + dgst, nil, trace.SourceAuto, ""},
		// Labels win, field by field.
		{"reg.example.com/shop/cart@" + dgst, map[string]string{LabelWorkload: "api"}, trace.SourceAuto, "api"},
		{"reg.example.com/batch/nightly@" + dgst, map[string]string{LabelTrace: "auto"}, trace.SourceAuto, ""},
	} {
		ch := auto
		if w, ok := tc.labels[LabelWorkload]; ok {
			ch.workload = w
		}
		got := c.choose(tc.image, tc.labels, ch)
		if got.trace.Kind != tc.wantTrace || got.workload != tc.wantWork {
			t.Errorf("%s with %v: trace %v, workload %q; want %v, %q", tc.image, tc.labels, got.trace.Kind, got.workload, tc.wantTrace, tc.wantWork)
		}
	}
	var none *Config
	if got := none.choose("reg.example.com/shop/cart@"+dgst, nil, auto); got != auto {
		t.Errorf("no config changed the choice: %+v", got)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"[[images]]\nmatch = \"a/*\"\nworkload = \"web\"\ntrce = \"none\"\n", "unknown key"},
		{"[[images]]\nworkload = \"web\"\n", "no match pattern"},
		{"[[images]]\nmatch = \"a/[\"\n", "syntax error in pattern"},
		{"[[images]]\nmatch = \"a/*\"\ntrace = \"/etc/passwd\"\n", "want auto, none or sha256:DIGEST"},
		{"[[images]]\nmatch = \"a/*\"\nworkload = \"we b\"\n", "workload"},
		{"[[images]\n", "toml"},
	} {
		_, err := ParseConfig([]byte(tc.file))
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
			t.Errorf("%q: %v, want an error saying %q", tc.file, err, tc.want)
		}
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte(strings.Repeat("# x\n", maxConfig/4+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a config over the bound: %v", err)
	}
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory as config: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(rulesFile))
	f.Add([]byte("[[images]]\nmatch = \"*\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		for _, r := range c.Images {
			if r.check() != nil {
				t.Fatalf("accepted a rule that does not check: %+v", r)
			}
		}
		c.choose("reg.example.com/a@"+dgst, nil, choice{})
	})
}
