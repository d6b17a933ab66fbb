package trace_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/testutil/distreg"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
	"github.com/dejavu-project/dejavu/internal/testutil/tracetest"
	"github.com/dejavu-project/dejavu/internal/testutil/treetest"
	"github.com/dejavu-project/dejavu/trace"
)

// recorded builds a small image into the registry at host, reads part of
// it through a backstore with a recorder, and returns the trace.
func recorded(t *testing.T, host, workload string, files int) (imageref.Ref, *trace.Trace, *backstore.Backstore) {
	t.Helper()
	testenv.RequireCommands(t, "mke2fs")
	src := t.TempDir()
	treetest.Generate(t, src, treetest.Spec{Files: files, MaxSmall: 16 << 10, Seed: 8})
	built, err := overlaybd.Build(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { built.Close() })
	ref, _ := imageref.Parse(host + "/app:v1")
	if err := imageref.WriteImage(context.Background(), ref, built.Image); err != nil {
		t.Fatal(err)
	}
	rec := trace.NewRecorder()
	bs, err := backstore.Open(context.Background(), ref.String(), backstore.WithCacheDir(t.TempDir()), backstore.WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	rec.Attach(bs)
	buf := make([]byte, 64<<10)
	for off := int64(0); off < min(bs.Size(), 4<<20); off += 256 << 10 {
		if _, err := bs.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	tr := rec.Trace(workload, []string{"cat", "/"}, "test")
	if len(tr.Records) == 0 || tr.Image != bs.Digest() {
		t.Fatalf("recorded %+v", tr)
	}
	// Every recorded range is what the backstore says the reads needed.
	for off := int64(0); off < min(bs.Size(), 4<<20); off += 256 << 10 {
		for _, r := range bs.BlobRanges(off, int64(len(buf))) {
			covered := false
			for _, x := range tr.Records {
				covered = covered || x.Layer == r.Layer && x.Offset <= r.Start && x.End() >= r.End
			}
			if !covered {
				t.Fatalf("blob range %+v not in the trace", r)
			}
		}
	}
	return ref, tr, bs
}

func TestAttachListPull(t *testing.T) {
	regs := map[string]string{}
	regs["embedded (referrers API)"] = testreg.Start(t).Addr
	regs["distribution (fallback tag)"] = distreg.Start(t)
	for name, host := range regs {
		t.Run(name, func(t *testing.T) {
			ref, tr, _ := recorded(t, host, "web", 200)
			d1, err := trace.Attach(context.Background(), ref, tr)
			if err != nil {
				t.Fatal(err)
			}
			tr2 := *tr
			tr2.Workload = "batch"
			tr2.Records = tr.Records[:1]
			d2, err := trace.Attach(context.Background(), ref, &tr2)
			if err != nil {
				t.Fatal(err)
			}
			infos, err := trace.List(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(infos) != 2 {
				t.Fatalf("listed %+v", infos)
			}
			seen := map[string]trace.Info{}
			for _, in := range infos {
				seen[in.Workload] = in
			}
			if seen["web"].Digest != d1 || seen["batch"].Digest != d2 || seen["web"].Records != len(tr.Records) || seen["web"].Bytes != tr.Bytes() {
				t.Fatalf("listed %+v", infos)
			}
			got, d, err := trace.Pull(context.Background(), ref, trace.WithWorkload("batch"))
			if err != nil || d != d2 || len(got.Records) != 1 {
				t.Fatalf("pull by workload: %v %s %+v", err, d, got)
			}
			got, d, err = trace.Pull(context.Background(), ref, trace.WithDigest(d1.String()))
			if err != nil || d != d1 || len(got.Records) != len(tr.Records) || got.Workload != "web" {
				t.Fatalf("pull by digest: %v", err)
			}
			if _, _, err := trace.Pull(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "--workload") {
				t.Fatalf("ambiguous pull: %v", err)
			}
			if _, _, err := trace.Pull(context.Background(), ref, trace.WithWorkload("nope")); err == nil {
				t.Fatal("pulled a missing workload")
			}
		})
	}
}

func TestAttachRefusesOtherImage(t *testing.T) {
	host := testreg.Start(t).Addr
	ref, tr, _ := recorded(t, host, "w", 50)
	other := *tr
	other.Layers = append([]v1.Hash{}, tr.Layers...)
	other.Layers[0] = tr.Image // some other digest
	other.Image = tr.Layers[0]
	_, err := trace.Attach(context.Background(), ref, &other)
	if err == nil || !strings.Contains(err.Error(), "layer 0 is") {
		t.Fatalf("err = %v, want a message naming layer 0", err)
	}
	if _, err := trace.Attach(context.Background(), ref, &other, trace.WithForce(true)); err == nil || !strings.Contains(err.Error(), "no layer matches") {
		t.Fatalf("force with no matching layer: %v", err)
	}
}

func TestParseArtifactMalformed(t *testing.T) {
	good := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dejavu.trace.v1",
"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
"layers":[{"mediaType":"application/vnd.dejavu.trace.v1+msgpack+zstd","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":100}],
"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":10}}`
	if _, err := trace.ParseArtifact([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"wrong layer media type", "msgpack+zstd", "tar+gzip", "layer media type"},
		{"2 GiB", `"size":100`, `"size":2147483648`, "claims 2147483648 bytes"},
		{"missing subject", `,
"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":10}`, ``, "no subject"},
		{"wrong artifact type", "dejavu.trace.v1\",", "other.v1\",", "artifact type"},
		{"not json", "{", "[", "manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatal("test did not change the manifest")
			}
			_, err := trace.ParseArtifact([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseArtifact(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dejavu.trace.v1","config":{},"layers":[{"mediaType":"application/vnd.dejavu.trace.v1+msgpack+zstd","size":5}],"subject":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := trace.ParseArtifact(b)
		if err != nil {
			return
		}
		if a.Layer.Size <= 0 || a.Layer.Size > trace.MaxEncoded || a.Layer.MediaType != trace.MediaType {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// TestExportRealImage exports a recorded trace of a real compressed image
// and checks every record against the layer's uncompressed file.
func TestExportRealImage(t *testing.T) {
	_, tr, bs := recorded(t, testreg.Start(t).Addr, "w", 100)
	var buf bytes.Buffer
	if err := trace.ExportOverlaybd(&buf, tr, bs.Layers()); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	layer := bs.Layers()[0].Describe()
	layerSize := layer.LayerSize
	n := 0
	for i := 24; i < len(b); i += 24 {
		off := int64(binary.LittleEndian.Uint64(b[i+16:]))
		count := int64(binary.LittleEndian.Uint64(b[i+8:]))
		if off < 0 || off+count > layerSize || off%int64(layer.BlockSize) != 0 {
			t.Fatalf("record %d: %d+%d outside the %d-byte layer file or off a block", n, off, count, layerSize)
		}
		n++
	}
	if n < len(tr.Records) {
		t.Fatalf("%d records exported for %d", n, len(tr.Records))
	}
}

// TestOrasDiscoversTraces: oras, an independent OCI client, lists the
// attached trace among the image's referrers, on both kinds of registry.
func TestOrasDiscoversTraces(t *testing.T) {
	oras := filepath.Join(testenv.RepoRoot(t), "out", "tools", "bin", "oras")
	if _, err := os.Stat(oras); err != nil {
		testenv.Skip(t, "oras is not installed (make deps installs it)")
	}
	for _, host := range []string{testreg.Start(t).Addr, distreg.Start(t)} {
		ref, tr, _ := recorded(t, host, "oras-check", 30)
		d, err := trace.Attach(context.Background(), ref, tr)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(oras, "discover", "--plain-http", "--format", "json", ref.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("oras discover: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), d.String()) {
			t.Fatalf("oras discover does not list %s:\n%s", d, out)
		}
	}
}

// TestAttachRefusesWhatAStartRefuses: attach checks a trace as a start
// would, against the image's layer sizes too (issue 13: a trace that made
// every start stall was attached without a word).
func TestAttachRefusesWhatAStartRefuses(t *testing.T) {
	host := testreg.Start(t).Addr
	ref, tr, bs := recorded(t, host, "w", 50)
	size := bs.Manifest().Layers[0].Size
	for _, tc := range []struct {
		name string
		add  trace.Record
		want string
	}{
		{"past its layer", trace.Record{Layer: 0, Offset: size, Length: 512}, "points past layer 0"},
		{"overlapping", tr.Records[0], "overlap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := *tr
			bad.Records = append(append([]trace.Record{}, tr.Records...), tc.add)
			_, err := trace.Attach(context.Background(), ref, &bad)
			if err == nil || !errors.Is(err, trace.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrRefused and %q", err, tc.want)
			}
			if infos, err := trace.List(context.Background(), ref); err != nil || len(infos) != 0 {
				t.Fatalf("attached anyway: %v, %v", infos, err)
			}
		})
	}
	if _, err := trace.Attach(context.Background(), ref, tr); err != nil {
		t.Fatalf("the recorded trace: %v", err)
	}
}

// A start takes the trace blob straight from the referrers list (the
// artifact names it in an annotation): as few requests as a pull by
// artifact digest (plus, on a registry without the referrers API, the
// probe for it), where the lookup through the artifact manifest took one
// more. A referrer whose annotation names the trace of another image is
// refused.
func TestPullStraightFromReferrers(t *testing.T) {
	for _, reg := range []struct {
		name  string
		host  string
		probe int64 // requests to learn the registry lacks the referrers API
	}{{"embedded (referrers API)", testreg.Start(t).Addr, 0}, {"distribution (fallback tag)", distreg.Start(t), 1}} {
		host := reg.host
		t.Run(reg.name, func(t *testing.T) {
			ctx := context.Background()
			ref, tr, bs := recorded(t, host, "web", 50)
			d, err := trace.Attach(ctx, ref, tr)
			if err != nil {
				t.Fatal(err)
			}
			var c testreg.Counter
			counted, _ := imageref.Parse(testreg.Proxy(t, host, &c) + "/app:v1")
			subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: bs.Digest()}
			mf, err := remote.Get(ref.Name)
			if err != nil {
				t.Fatal(err)
			}
			subject.Size = mf.Size
			pulls, blobs := map[string]int64{}, map[string]int64{}
			for how, opt := range map[string]trace.PullOption{"auto": trace.WithWorkload("web"), "digest": trace.WithDigest(d.String())} {
				c.Reset()
				got, gd, err := trace.Pull(ctx, counted, trace.WithSubject(subject), opt)
				if err != nil || gd != d || len(got.Records) != len(tr.Records) {
					t.Fatalf("pull (%s): %v, %s", how, err, gd)
				}
				pulls[how], blobs[how] = c.Requests(), c.BlobGets()
			}
			if pulls["auto"] > pulls["digest"]+reg.probe {
				t.Errorf("a pull through the referrers list took %d requests, one by digest %d: the blob annotation was not used", pulls["auto"], pulls["digest"])
			}
			// A trace this small rides in the referrers list itself.
			if blobs["auto"] != 0 || blobs["digest"] != 1 {
				t.Errorf("blob GETs: %d through the referrers list (want 0: the trace is inline), %d by digest (want 1)", blobs["auto"], blobs["digest"])
			}

			// Another image of the repository whose referrer names the
			// first image's trace blob.
			art, err := remote.Get(ref.Name.Context().Digest(d.String()))
			if err != nil {
				t.Fatal(err)
			}
			a, err := trace.ParseArtifact(art.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			other, _ := imageref.Parse(host + "/app:v2")
			img, err := random.Image(512, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(other.Name, img); err != nil {
				t.Fatal(err)
			}
			tracetest.PushUnchecked(t, other.String(), func(v1.Hash, []v1.Descriptor) []byte { return []byte("not this") },
				map[string]string{trace.AnnotationBlob: a.Layer.Digest.String() + ":" + strconv.FormatInt(a.Layer.Size, 10)})
			if _, _, err := trace.Pull(ctx, other); !errors.Is(err, trace.ErrRefused) || !strings.Contains(err.Error(), "holds a trace of image") {
				t.Errorf("pulled another image's trace through a referrer's annotation: %v", err)
			}

			// A referrer whose inline trace is not the blob it names: the
			// inline bytes are ignored, the named blob is fetched and
			// checked (and here refused: it is the first image's).
			third, _ := imageref.Parse(host + "/app:v3")
			img3, err := random.Image(512, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(third.Name, img3); err != nil {
				t.Fatal(err)
			}
			forged := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, int(a.Layer.Size)))
			tracetest.PushUnchecked(t, third.String(), func(v1.Hash, []v1.Descriptor) []byte { return []byte("not this") },
				map[string]string{trace.AnnotationBlob: a.Layer.Digest.String() + ":" + strconv.FormatInt(a.Layer.Size, 10), trace.AnnotationData: forged})
			if _, _, err := trace.Pull(ctx, third); !errors.Is(err, trace.ErrRefused) || !strings.Contains(err.Error(), "holds a trace of image") {
				t.Errorf("a forged inline trace: %v, want the named blob fetched and refused", err)
			}
		})
	}
}
