package experiment

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/reports"
)

func TestParseModes(t *testing.T) {
	for _, tc := range []struct {
		runtime reports.Runtime
		list    string
		want    []reports.Mode
		wantErr string
	}{
		{reports.RuntimeDejavu, "full,lazy,prefetch,fifo,warm,local", reports.AllModes, ""},
		{reports.RuntimeContainerd, "local", nil, `mode "local"`},
		{reports.RuntimeDejavu, "lazy", []reports.Mode{reports.ModeLazy}, ""},
		{reports.RuntimeContainerd, "lazy,prefetch,warm", []reports.Mode{reports.ModeLazy, reports.ModePrefetch, reports.ModeWarm}, ""},
		{reports.RuntimeContainerd, "fifo", nil, `mode "fifo": want some of lazy,prefetch,warm with the containerd runtime`},
		{reports.RuntimeContainerd, "full,lazy", nil, `mode "full"`},
		{reports.RuntimeDejavu, "lazy,cold", nil, `mode "cold"`},
		{reports.RuntimeDejavu, "", nil, `mode ""`},
		{reports.RuntimeDejavu, "lazy,", nil, `mode ""`},
	} {
		got, err := ParseModes(tc.runtime, tc.list)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseModes(%s, %q): error %v, want one with %q", tc.runtime, tc.list, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseModes(%s, %q) = %v, %v; want %v", tc.runtime, tc.list, got, err, tc.want)
		}
	}
}

// Run refuses what it cannot do before it starts anything.
func TestRunBadExperiment(t *testing.T) {
	for _, tc := range []struct {
		e    Experiment
		want string
	}{
		{Experiment{Runtime: "docker", Ref: "127.0.0.1:5000/a:b"}, `runtime "docker"`},
		{Experiment{Modes: []reports.Mode{"cold"}, Ref: "127.0.0.1:5000/a:b"}, `mode "cold"`},
		{Experiment{Runtime: reports.RuntimeContainerd, Modes: []reports.Mode{reports.ModeFIFO}, Ref: "127.0.0.1:5000/a:b"}, `mode "fifo"`},
		{Experiment{Runtime: reports.RuntimeContainerd, ReadySpec: "tcp:80", Ref: "127.0.0.1:5000/a:b"}, "readiness"},
		{Experiment{Ref: "oci:/nonexistent:tag"}, "needs an image in a registry"},
		{Experiment{Runtime: reports.RuntimeContainerd, Modes: []reports.Mode{reports.ModePrefetch}, Trace: "web.djv", Ref: "127.0.0.1:5000/a:b"}, "chosen by a snapshot label"},
		{Experiment{Trace: "sha256:abc", Ref: "127.0.0.1:5000/a:b"}, "64 lowercase hex"},
		{Experiment{Modes: []reports.Mode{reports.ModeFIFO}, Trace: "none", Ref: "127.0.0.1:5000/a:b"}, "need a trace"},
		{Experiment{Modes: []reports.Mode{reports.ModePrefetch}, Trace: "/nonexistent.djv", Ref: "127.0.0.1:5000/a:b"}, "no such file"},
		{Experiment{Ref: "Not A Ref"}, ""},
	} {
		_, err := Run(context.Background(), tc.e)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v): error %v, want one with %q", tc.e, err, tc.want)
		}
	}
}
