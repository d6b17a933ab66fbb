package trace_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/internal/testutil/tracetest"
	"github.com/dejavu-project/dejavu/trace"
)

const evil = "web\x1b[2J\x1b]0;pwned\x07\nroot"

// TestWorkloadNames: a workload name is letters, digits, '.', '_' and '-';
// a trace naming another is refused like any malformed trace.
func TestWorkloadNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"py-3.12_slim", true}, {"A1", true}, {strings.Repeat("a", 128), true},
		{"", false}, {"-web", false}, {".hidden", false}, {"a b", false}, {"web/../x", false},
		{evil, false}, {strings.Repeat("a", 129), false}, {"naïve", false},
	} {
		if err := trace.ValidWorkload(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidWorkload(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	tr := &trace.Trace{Workload: evil, Layers: []v1.Hash{{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}},
		Records: []trace.Record{{Layer: 0, Offset: 0, Length: 512}}}
	if err := tr.Validate(); !errors.Is(err, trace.ErrRefused) || strings.Contains(err.Error(), "\x1b") {
		t.Errorf("Validate of a trace named %q: %v; want it refused, quoted", evil, err)
	}
}

// TestListQuotesHostileAnnotations: a referrer's annotations are whoever
// pushed it's to write; trace ls shows a name that is no workload name
// quoted, so no escape sequence or newline reaches a terminal.
func TestListQuotesHostileAnnotations(t *testing.T) {
	ref := testreg.Start(t).HelloWorld(t, "hello:obd")
	tracetest.PushUnchecked(t, ref, func(v1.Hash, []v1.Descriptor) []byte { return []byte("not a trace") },
		map[string]string{trace.AnnotationWorkload: evil, trace.AnnotationRecorder: "ebpf\r\n"})
	r, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := trace.List(context.Background(), r)
	if err != nil || len(infos) != 1 {
		t.Fatalf("List: %+v, %v", infos, err)
	}
	for _, s := range []string{infos[0].Workload, infos[0].Recorder} {
		if strings.ContainsAny(s, "\x1b\x07\n\r") || !strings.HasPrefix(s, `"`) {
			t.Errorf("listed %q; want it quoted, with no control character", s)
		}
	}
}
