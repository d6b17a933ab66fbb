package trace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

// ArtifactType marks a trace artifact.
const ArtifactType = "application/vnd.dejavu.trace.v1"

// emptyConfig is the OCI empty descriptor's content.
const (
	emptyMediaType = "application/vnd.oci.empty.v1+json"
	emptyDigest    = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
)

// Annotations on a trace artifact.
const (
	AnnotationWorkload = "dev.dejavu.trace.workload"
	AnnotationRecords  = "dev.dejavu.trace.records"
	AnnotationBytes    = "dev.dejavu.trace.bytes"
	AnnotationRecorder = "dev.dejavu.trace.recorder"
	AnnotationRuns     = "dev.dejavu.trace.runs"
	AnnotationCreated  = "org.opencontainers.image.created"
	// AnnotationBlob names the trace blob ("sha256:HEX:SIZE"), so that a
	// start can fetch it straight from the referrers list, a round trip
	// sooner than through the artifact manifest.
	AnnotationBlob = "dev.dejavu.trace.blob"
)

// Artifact is a trace artifact's manifest, parsed and checked.
type Artifact struct {
	Digest      v1.Hash
	Subject     v1.Descriptor
	Layer       v1.Descriptor
	Annotations map[string]string
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// maxManifest bounds an artifact manifest.
const maxManifest = 1 << 20

// ParseArtifact checks that raw is a trace artifact manifest.
func ParseArtifact(raw []byte) (*Artifact, error) {
	if len(raw) > maxManifest {
		return nil, fmt.Errorf("trace artifact: manifest of %d bytes is larger than %d", len(raw), maxManifest)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("trace artifact: manifest: %w", err)
	}
	switch {
	case m.MediaType != types.OCIManifestSchema1:
		return nil, fmt.Errorf("trace artifact: manifest media type %q, want %q", m.MediaType, types.OCIManifestSchema1)
	case m.ArtifactType != ArtifactType:
		return nil, fmt.Errorf("trace artifact: artifact type %q, want %q", m.ArtifactType, ArtifactType)
	case m.Subject == nil:
		return nil, errors.New("trace artifact: no subject: it does not say which image it belongs to")
	case len(m.Layers) != 1:
		return nil, fmt.Errorf("trace artifact: %d layers, want 1", len(m.Layers))
	case m.Layers[0].MediaType != MediaType:
		return nil, fmt.Errorf("trace artifact: layer media type %q, want %q", m.Layers[0].MediaType, MediaType)
	case m.Layers[0].Size <= 0 || m.Layers[0].Size > MaxEncoded:
		return nil, fmt.Errorf("trace artifact: layer claims %d bytes; a trace is 1..%d bytes", m.Layers[0].Size, MaxEncoded)
	}
	h, _, _ := v1.SHA256(bytes.NewReader(raw))
	return &Artifact{Digest: h, Subject: *m.Subject, Layer: m.Layers[0], Annotations: m.Annotations}, nil
}

// rawManifest is a manifest pushed as it is.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// AttachOption configures Attach.
type AttachOption func(*attachConfig)

type attachConfig struct {
	force       bool
	opts        []imageref.Option
	carriedFrom v1.Hash  // set by Carry
	carried     *Carried // what binding kept, for Carry's report
}

// WithForce attaches a trace to an image whose layers only partly match,
// keeping the records of the layers that do.
func WithForce(on bool) AttachOption { return func(c *attachConfig) { c.force = on } }

// WithRefOptions passes registry options (insecure, platform, credentials).
func WithRefOptions(o ...imageref.Option) AttachOption {
	return func(c *attachConfig) { c.opts = append(c.opts, o...) }
}

// image resolves ref to its registry name, manifest descriptor and layers.
func image(ctx context.Context, ref imageref.Ref, opts []imageref.Option) (name.Reference, []remote.Option, v1.Descriptor, []v1.Descriptor, error) {
	n, ropts, err := imageref.Remote(ctx, ref, opts...)
	if err != nil {
		return nil, nil, v1.Descriptor{}, nil, err
	}
	img, err := imageref.Image(ctx, ref, opts...)
	if err != nil {
		return nil, nil, v1.Descriptor{}, nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, nil, v1.Descriptor{}, nil, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, nil, v1.Descriptor{}, nil, err
	}
	mt, _ := img.MediaType()
	m, err := img.Manifest()
	if err != nil {
		return nil, nil, v1.Descriptor{}, nil, err
	}
	ropts = append(ropts, remote.WithReferrersTagFallback(true))
	return n, ropts, v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, m.Layers, nil
}

// bind checks t against the image and returns the trace to attach: t
// itself, or with force the records of the layers the image has.
func bind(t *Trace, digest v1.Hash, layers []v1.Hash, force bool) (*Trace, error) {
	if t.Image == digest && slices.Equal(t.Layers, layers) {
		return t, nil
	}
	var diffs []string
	for i, l := range t.Layers {
		if i >= len(layers) {
			diffs = append(diffs, fmt.Sprintf("trace layer %d (%s) is beyond the image's %d layers", i, l, len(layers)))
		} else if layers[i] != l {
			diffs = append(diffs, fmt.Sprintf("layer %d is %s in the trace but %s in the image", i, l, layers[i]))
		}
	}
	if len(layers) > len(t.Layers) {
		diffs = append(diffs, fmt.Sprintf("the image has %d layers, the trace %d", len(layers), len(t.Layers)))
	}
	if len(diffs) == 0 {
		diffs = append(diffs, "same layers, but the manifest differs")
	}
	msg := fmt.Sprintf("trace was recorded on %s, not on %s: %s", t.Image, digest, diffs[0])
	if !force {
		return nil, fmt.Errorf("trace: %s (use --force to keep the records of the matching layers)", msg)
	}
	index := map[v1.Hash]int{}
	for i, l := range layers {
		index[l] = i
	}
	out := *t
	out.Image, out.Layers, out.Records = digest, layers, nil
	for _, r := range t.Records {
		if i, ok := index[t.Layers[r.Layer]]; ok {
			r.Layer = i
			out.Records = append(out.Records, r)
		}
	}
	if len(out.Records) == 0 {
		return nil, fmt.Errorf("trace: %s; no layer matches, nothing would be kept", msg)
	}
	return &out, nil
}

// Attach pushes t as an OCI artifact whose subject is the image at ref, and
// returns the artifact's digest. The image digest does not change.
func Attach(ctx context.Context, ref imageref.Ref, t *Trace, opts ...AttachOption) (v1.Hash, error) {
	var cfg attachConfig
	for _, o := range opts {
		o(&cfg)
	}
	n, ropts, subject, layers, err := image(ctx, ref, cfg.opts)
	if err != nil {
		return v1.Hash{}, err
	}
	var digests []v1.Hash
	for _, l := range layers {
		digests = append(digests, l.Digest)
	}
	t, err = bind(t, subject.Digest, digests, cfg.force)
	if err != nil {
		return v1.Hash{}, err
	}
	if cfg.carried != nil {
		cfg.carried.Kept, cfg.carried.KeptBytes = len(t.Records), t.Bytes()
		cfg.carried.Layers = sharedLayers(t)
	}
	enc, err := checkAttachable(t, layers)
	if err != nil {
		return v1.Hash{}, err
	}
	repo := n.Context()
	for _, l := range []v1.Layer{static.NewLayer([]byte("{}"), emptyMediaType), static.NewLayer(enc, MediaType)} {
		if err := remote.WriteLayer(repo, l, ropts...); err != nil {
			return v1.Hash{}, fmt.Errorf("trace: push blob: %w", err)
		}
	}
	ld, _, _ := v1.SHA256(bytes.NewReader(enc))
	created := t.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	m := manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Digest: mustHash(emptyDigest), Size: 2, Data: []byte("{}")},
		Layers:        []v1.Descriptor{{MediaType: MediaType, Digest: ld, Size: int64(len(enc)), Annotations: map[string]string{"org.opencontainers.image.title": "trace.djv"}}},
		Subject:       &subject,
		Annotations: map[string]string{
			AnnotationWorkload: t.Workload,
			AnnotationRecords:  strconv.Itoa(len(t.Records)),
			AnnotationBytes:    strconv.FormatInt(t.Bytes(), 10),
			AnnotationRecorder: t.Recorder,
			AnnotationRuns:     strconv.Itoa(t.Runs),
			AnnotationCreated:  created.Format(time.RFC3339),
			AnnotationBlob:     ld.String() + ":" + strconv.Itoa(len(enc)),
		},
	}
	if v := inlineAnnotation(enc); v != "" {
		m.Annotations[AnnotationData] = v
	}
	m.Annotations[AnnotationLayerBytes] = layerBytes(t)
	if cfg.carriedFrom != (v1.Hash{}) {
		m.Annotations[AnnotationCarriedFrom] = cfg.carriedFrom.String()
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, err
	}
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	if err := remote.Put(repo.Digest(d.String()), rawManifest{raw, types.OCIManifestSchema1}, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("trace: push artifact: %w", err)
	}
	return d, nil
}

// checkAttachable encodes t and refuses it when a start would: its records
// (Validate), against the image's layer sizes (CheckLayers), their order
// (the encoded form's, which decoding checks), and its encoded form
// (Unmarshal's bounds on the encoded size).
func checkAttachable(t *Trace, layers []v1.Descriptor) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if err := t.CheckLayers(layers); err != nil {
		return nil, err
	}
	if err := t.checkSorted(); err != nil {
		return nil, err
	}
	enc, err := Marshal(t)
	if err != nil {
		return nil, err
	}
	if len(enc) > MaxEncoded {
		return nil, refused(fmt.Errorf("trace: encoded in %d bytes, a start reads at most %d", len(enc), MaxEncoded))
	}
	if _, err := Unmarshal(enc); err != nil {
		return nil, err
	}
	return enc, nil
}

func mustHash(s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		panic(err)
	}
	return h
}

// Info describes an attached trace.
type Info struct {
	Digest   v1.Hash   `json:"digest"`
	Workload string    `json:"workload"`
	Records  int       `json:"records"`
	Bytes    int64     `json:"bytes"`
	Recorder string    `json:"recorder,omitempty"`
	Created  time.Time `json:"created"`
	// CarriedFrom is the image the trace was recorded on when Carry
	// attached it here from there; empty for a trace recorded here.
	CarriedFrom string `json:"carriedFrom,omitempty"`
	// LayerBytes are the bytes it covers per layer, bottom first (nil when
	// the artifact does not say).
	LayerBytes []int64 `json:"layerBytes,omitempty"`
	// blob is the trace blob as the artifact's annotation names it (zero
	// when it does not), and inline AnnotationData's value, checked only
	// for the trace a start picks.
	blob   v1.Descriptor
	inline string
}

// parseBlobAnnotation reads AnnotationBlob's value. Like every annotation
// it is untrusted: the blob is checked against the digest as it is read,
// and the trace it holds against the image it is for.
func parseBlobAnnotation(v string) (v1.Descriptor, bool) {
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return v1.Descriptor{}, false
	}
	h, err := v1.NewHash(v[:i])
	size, serr := strconv.ParseInt(v[i+1:], 10, 64)
	if err != nil || serr != nil || size <= 0 || size > MaxEncoded {
		return v1.Descriptor{}, false
	}
	return v1.Descriptor{MediaType: MediaType, Digest: h, Size: size}, true
}

// List returns the traces attached to the image at ref, through the
// referrers API or its fallback tag: those recorded on it first, then those
// carried to it (Carry), each newest first.
func List(ctx context.Context, ref imageref.Ref, opts ...imageref.Option) ([]Info, error) {
	n, ropts, subject, _, err := image(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	return referrers(n, subject, ropts)
}

// referrers lists the traces attached to subject in n's repository.
func referrers(n name.Reference, subject v1.Descriptor, ropts []remote.Option) ([]Info, error) {
	idx, err := remote.Referrers(n.Context().Digest(subject.Digest.String()), ropts...)
	if err != nil {
		return nil, fmt.Errorf("trace: list referrers of %s: %w", subject.Digest, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, d := range im.Manifests {
		// Some registries report the config media type as the artifact
		// type; our annotations still tell a trace apart. Pull checks the
		// manifest itself.
		_, annotated := d.Annotations[AnnotationRecords]
		if d.ArtifactType != ArtifactType && !(d.ArtifactType == emptyMediaType && annotated) {
			continue
		}
		in := Info{Digest: d.Digest, Workload: d.Annotations[AnnotationWorkload], Recorder: d.Annotations[AnnotationRecorder]}
		// Annotations are whoever pushed the referrer's to write: a name
		// that is not a workload name is shown quoted, never as it is.
		if ValidWorkload(in.Workload) != nil && in.Workload != "" {
			in.Workload = strconv.QuoteToASCII(in.Workload)
		}
		if ValidWorkload(in.Recorder) != nil && in.Recorder != "" {
			in.Recorder = strconv.QuoteToASCII(in.Recorder)
		}
		in.Records, _ = strconv.Atoi(d.Annotations[AnnotationRecords])
		in.Bytes, _ = strconv.ParseInt(d.Annotations[AnnotationBytes], 10, 64)
		in.Created, _ = time.Parse(time.RFC3339, d.Annotations[AnnotationCreated])
		in.blob, _ = parseBlobAnnotation(d.Annotations[AnnotationBlob])
		in.inline = d.Annotations[AnnotationData]
		if h, err := v1.NewHash(d.Annotations[AnnotationCarriedFrom]); err == nil {
			in.CarriedFrom = h.String()
		}
		in.LayerBytes = parseLayerBytes(d.Annotations[AnnotationLayerBytes])
		out = append(out, in)
	}
	recordedFirst(out)
	return out, nil
}

// PullOption selects which attached trace Pull fetches.
type PullOption func(*pullConfig)

type pullConfig struct {
	digest   string
	workload string
	subject  *v1.Descriptor
	opts     []imageref.Option
}

// WithSubject says which image manifest ref resolves to, when the caller
// has resolved it already: Pull then asks the registry only for the
// referrers, the artifact and its blob.
func WithSubject(d v1.Descriptor) PullOption { return func(c *pullConfig) { c.subject = &d } }

// WithDigest pins the trace artifact by digest.
func WithDigest(d string) PullOption { return func(c *pullConfig) { c.digest = d } }

// WithWorkload picks the newest trace of a workload.
func WithWorkload(w string) PullOption { return func(c *pullConfig) { c.workload = w } }

// WithPullRefOptions passes registry options.
func WithPullRefOptions(o ...imageref.Option) PullOption {
	return func(c *pullConfig) { c.opts = append(c.opts, o...) }
}

// Pull fetches an attached trace of the image at ref: the one pinned by
// digest, or else of a workload (or of the only workload there is) the
// newest recorded on the image, or when none was, the newest carried to it
// from another.
func Pull(ctx context.Context, ref imageref.Ref, opts ...PullOption) (*Trace, v1.Hash, error) {
	var cfg pullConfig
	for _, o := range opts {
		o(&cfg)
	}
	var (
		n       name.Reference
		ropts   []remote.Option
		subject v1.Descriptor
		err     error
	)
	if cfg.subject != nil {
		subject = *cfg.subject
		if n, ropts, err = imageref.Remote(ctx, ref, cfg.opts...); err != nil {
			return nil, v1.Hash{}, err
		}
		ropts = append(ropts, remote.WithReferrersTagFallback(true))
	} else if n, ropts, subject, _, err = image(ctx, ref, cfg.opts); err != nil {
		return nil, v1.Hash{}, err
	}
	// One transport for every request below: one authentication ping.
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("trace: %w", err)
	}
	ropts = append(ropts, remote.Reuse(puller))
	digest := cfg.digest
	if digest == "" {
		infos, err := referrers(n, subject, ropts)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		var pick []Info
		for _, in := range infos {
			if cfg.workload == "" || in.Workload == cfg.workload {
				pick = append(pick, in)
			}
		}
		switch {
		case len(pick) == 0 && cfg.workload != "":
			return nil, v1.Hash{}, fmt.Errorf("trace: no trace of workload %q is attached to %s", cfg.workload, subject.Digest)
		case len(pick) == 0:
			return nil, v1.Hash{}, fmt.Errorf("trace: no trace is attached to %s", subject.Digest)
		case cfg.workload == "" && distinctWorkloads(pick) > 1:
			return nil, v1.Hash{}, fmt.Errorf("trace: %d workloads have traces attached to %s; choose one with --workload", distinctWorkloads(pick), subject.Digest)
		}
		if b := inlineBlob(pick[0].inline, pick[0].blob); b != nil {
			return decodeFor(b, subject, pick[0].Digest)
		}
		if pick[0].blob.Size > 0 {
			return pullBlob(n.Context(), pick[0].blob, subject, pick[0].Digest, ropts)
		}
		digest = pick[0].Digest.String()
	}
	repo := n.Context()
	desc, err := remote.Get(repo.Digest(digest), ropts...)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("trace: fetch artifact %s: %w", digest, err)
	}
	art, err := ParseArtifact(desc.Manifest)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if art.Subject.Digest != subject.Digest {
		return nil, v1.Hash{}, fmt.Errorf("trace: artifact %s belongs to image %s, not to %s", digest, art.Subject.Digest, subject.Digest)
	}
	return pullBlob(repo, art.Layer, subject, art.Digest, ropts)
}

// pullBlob fetches and decodes the trace blob of artifact, checking it
// against its digest and size and the trace against the image it is for:
// the artifact's subject, or the referrers list that named the blob, may
// say otherwise.
func pullBlob(repo name.Repository, blob, subject v1.Descriptor, artifact v1.Hash, ropts []remote.Option) (*Trace, v1.Hash, error) {
	l, err := remote.Layer(repo.Digest(blob.Digest.String()), ropts...)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("trace: fetch trace blob: %w", err)
	}
	defer rc.Close()
	// The blob reader verifies the digest at EOF; the limit keeps a lying
	// registry from feeding more than the manifest announced.
	b, err := io.ReadAll(io.LimitReader(rc, blob.Size+1))
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("trace: fetch trace blob: %w", err)
	}
	if int64(len(b)) != blob.Size {
		return nil, v1.Hash{}, fmt.Errorf("trace: trace blob has %d bytes, the artifact says %d", len(b), blob.Size)
	}
	return decodeFor(b, subject, artifact)
}

// decodeFor decodes the trace blob of artifact, refusing a trace of an
// image other than subject.
func decodeFor(b []byte, subject v1.Descriptor, artifact v1.Hash) (*Trace, v1.Hash, error) {
	t, err := Unmarshal(b)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if t.Image != subject.Digest {
		return nil, v1.Hash{}, refused(fmt.Errorf("trace: artifact %s holds a trace of image %s, not of %s", artifact, t.Image, subject.Digest))
	}
	return t, artifact, nil
}

func distinctWorkloads(in []Info) int {
	seen := map[string]bool{}
	for _, i := range in {
		seen[i.Workload] = true
	}
	return len(seen)
}
