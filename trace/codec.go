package trace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// MediaType is the media type of an encoded trace.
const MediaType = "application/vnd.dejavu.trace.v1+msgpack+zstd"

// Version is the encoding version written.
const Version = 1

var magic = []byte("DJVTRACE")

// Limits on what Decode accepts (see also MaxRecords and decodeLimit).
const (
	MaxEncoded = 64 << 20  // bytes of an encoded trace
	maxDecoded = 256 << 20 // bytes of its msgpack, whatever the encoded size
)

// Encode writes t: magic, version, then the msgpack form compressed with
// zstd.
func Encode(w io.Writer, t *Trace) error {
	var raw bytes.Buffer
	enc := msgpack.NewEncoder(&raw)
	put := func(err error) {
		if err != nil {
			panic(err) // writes to a bytes.Buffer do not fail
		}
	}
	put(enc.EncodeMapLen(9))
	put(enc.EncodeString("image"))
	put(enc.EncodeString(t.Image.String()))
	put(enc.EncodeString("layers"))
	put(enc.EncodeArrayLen(len(t.Layers)))
	for _, l := range t.Layers {
		put(enc.EncodeString(l.String()))
	}
	put(enc.EncodeString("workload"))
	put(enc.EncodeString(t.Workload))
	put(enc.EncodeString("command"))
	put(enc.EncodeArrayLen(len(t.Command)))
	for _, c := range t.Command {
		put(enc.EncodeString(c))
	}
	put(enc.EncodeString("recorder"))
	put(enc.EncodeString(t.Recorder))
	put(enc.EncodeString("runs"))
	put(enc.EncodeInt(int64(t.Runs)))
	put(enc.EncodeString("tool"))
	put(enc.EncodeString(t.Tool))
	put(enc.EncodeString("created"))
	put(enc.EncodeInt(t.Created.UnixNano()))
	// Records as one flat array of four integers each; offsets within a
	// layer are small once sorted, but plain values compress well enough.
	put(enc.EncodeString("records"))
	put(enc.EncodeArrayLen(4 * len(t.Records)))
	for _, r := range t.Records {
		put(enc.EncodeInt(int64(r.Layer)))
		put(enc.EncodeInt(r.Offset))
		put(enc.EncodeInt(r.Length))
		put(enc.EncodeInt(int64(r.First)))
	}
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	defer zw.Close()
	head := append(append([]byte{}, magic...), 0, 0)
	binary.LittleEndian.PutUint16(head[len(magic):], Version)
	if _, err := w.Write(head); err != nil {
		return fmt.Errorf("trace: write: %w", err)
	}
	if _, err := w.Write(zw.EncodeAll(raw.Bytes(), nil)); err != nil {
		return fmt.Errorf("trace: write: %w", err)
	}
	return nil
}

// Marshal returns the encoded trace.
func Marshal(t *Trace) ([]byte, error) {
	var b bytes.Buffer
	if err := Encode(&b, t); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrNotTrace is returned for bytes that do not start with the trace magic.
var ErrNotTrace = errors.New("trace: not a dejavu trace (bad magic)")

// Decode reads an encoded trace, checking every length before it allocates.
func Decode(r io.Reader) (*Trace, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxEncoded+1))
	if err != nil {
		return nil, fmt.Errorf("trace: read: %w", err)
	}
	return Unmarshal(b)
}

// Unmarshal decodes an encoded trace. The bytes are untrusted: they are
// decompressed as a stream, never to more than decodeLimit of their size,
// and every length is checked before anything is allocated for it, so a
// small trace that claims much is refused after reading its first bytes.
// Every error wraps ErrRefused.
func Unmarshal(b []byte) (*Trace, error) {
	t, err := unmarshal(b)
	if err != nil {
		return nil, refused(err)
	}
	return t, nil
}

func unmarshal(b []byte) (*Trace, error) {
	if len(b) > MaxEncoded {
		return nil, fmt.Errorf("trace: more than %d bytes", MaxEncoded)
	}
	if len(b) < len(magic)+2 || !bytes.Equal(b[:len(magic)], magic) {
		return nil, ErrNotTrace
	}
	if v := binary.LittleEndian.Uint16(b[len(magic):]); v != Version {
		return nil, fmt.Errorf("trace: encoding version %d, this dejavu reads %d", v, Version)
	}
	limit := decodeLimit(len(b))
	// The window is what the decompressor allocates up front: no more than
	// the output may be, but streaming encoders' usual 8 MiB is allowed.
	window := uint64(max(limit, 8<<20))
	dec, err := zstd.NewReader(bytes.NewReader(b[len(magic)+2:]), zstd.WithDecoderMaxMemory(window),
		zstd.WithDecoderMaxWindow(window), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, fmt.Errorf("trace: decompress: %w", err)
	}
	defer dec.Close()
	lr := &limitedReader{r: dec, left: limit}
	t, err := decodeFields(lr, limit)
	if err != nil {
		if lr.over {
			return nil, fmt.Errorf("trace: %d encoded bytes decompress to more than %d", len(b), limit)
		}
		if lr.err != nil {
			return nil, fmt.Errorf("trace: decompress: %w", lr.err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("trace: truncated: %w", err)
		}
		return nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if err := t.checkSorted(); err != nil {
		return nil, err
	}
	return t, nil
}

// limitedReader fails, and says so, past its limit; it keeps the
// decompressor's error apart from the decoder's.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
	err  error // of r, other than EOF
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.over = true
		return 0, errors.New("trace: decompressed size limit reached")
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

func decodeFields(r io.Reader, size int64) (*Trace, error) {
	fd := &fieldDecoder{d: msgpack.NewDecoder(r), size: size}
	n, err := fd.d.DecodeMapLen()
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if err := fd.bound(n, 2, "field map"); err != nil {
		return nil, err
	}
	t := &Trace{}
	for i := 0; i < n; i++ {
		key, err := fd.d.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("trace: field name: %w", err)
		}
		field, ok := fields[key]
		if !ok {
			// Fields of later versions that this one does not know.
			if err := fd.skip(0); err != nil {
				return nil, fmt.Errorf("trace: field %q: %w", key, err)
			}
			continue
		}
		if err := field(fd, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// fields decode the value of each known field into the trace.
var fields = map[string]func(*fieldDecoder, *Trace) error{
	"image": func(fd *fieldDecoder, t *Trace) (err error) {
		t.Image, err = fd.hash("image", "image digest")
		return err
	},
	"layers":   (*fieldDecoder).layers,
	"workload": func(fd *fieldDecoder, t *Trace) (err error) { t.Workload, err = fd.str("workload"); return err },
	"command":  func(fd *fieldDecoder, t *Trace) (err error) { t.Command, err = fd.strs("command"); return err },
	"recorder": func(fd *fieldDecoder, t *Trace) (err error) { t.Recorder, err = fd.str("recorder"); return err },
	"runs": func(fd *fieldDecoder, t *Trace) (err error) {
		if t.Runs, err = fd.d.DecodeInt(); err != nil {
			return fmt.Errorf("trace: runs: %w", err)
		}
		return nil
	},
	"tool": func(fd *fieldDecoder, t *Trace) (err error) { t.Tool, err = fd.str("tool"); return err },
	"created": func(fd *fieldDecoder, t *Trace) error {
		ns, err := fd.d.DecodeInt64()
		if err != nil {
			return fmt.Errorf("trace: created: %w", err)
		}
		t.Created = time.Unix(0, ns).UTC()
		return nil
	},
	"records": (*fieldDecoder).records,
}

// fieldDecoder decodes the values of a trace's fields.
type fieldDecoder struct {
	d    *msgpack.Decoder
	size int64 // most bytes the msgpack form may have
}

// bound checks a length: every element takes at least per bytes, so no
// length may claim more than the input may hold, which bounds every
// allocation by the encoded size.
func (fd *fieldDecoder) bound(n, per int, what string) error {
	if n < 0 || int64(n)*int64(per) > fd.size {
		return fmt.Errorf("trace: %s claims %d entries, more than %d decompressed bytes can hold", what, n, fd.size)
	}
	return nil
}

// maxSkipDepth bounds the nesting of unknown fields: msgpack's own Skip
// recurses without a limit, and a deeply nested value would grow the stack
// by the encoded size times a frame.
const maxSkipDepth = 16

// skip skips one value, descending into arrays and maps itself.
func (fd *fieldDecoder) skip(depth int) error {
	if depth > maxSkipDepth {
		return fmt.Errorf("nested deeper than %d", maxSkipDepth)
	}
	c, err := fd.d.PeekCode()
	if err != nil {
		return err
	}
	var n int
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		if n, err = fd.d.DecodeArrayLen(); err != nil {
			return err
		}
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		if n, err = fd.d.DecodeMapLen(); err != nil {
			return err
		}
		n *= 2
	default:
		return fd.d.Skip() // a scalar, string, binary or extension
	}
	if err := fd.bound(n, 1, "unknown field"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := fd.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (fd *fieldDecoder) str(what string) (string, error) {
	s, err := fd.d.DecodeString()
	if err != nil {
		return "", fmt.Errorf("trace: %s: %w", what, err)
	}
	return s, nil
}

func (fd *fieldDecoder) hash(field, what string) (v1.Hash, error) {
	s, err := fd.str(field)
	if err != nil {
		return v1.Hash{}, err
	}
	return parseHash(s, what)
}

func parseHash(s, what string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil {
		return h, fmt.Errorf("trace: %s %q: %w", what, s, err)
	}
	return h, nil
}

func (fd *fieldDecoder) strs(what string) ([]string, error) {
	n, err := fd.d.DecodeArrayLen()
	if err != nil {
		return nil, fmt.Errorf("trace: %s: %w", what, err)
	}
	if err := fd.bound(n, 1, what); err != nil {
		return nil, err
	}
	out := make([]string, 0, max(n, 0))
	for i := 0; i < n; i++ {
		s, err := fd.d.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("trace: %s[%d]: %w", what, i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (fd *fieldDecoder) layers(t *Trace) error {
	ls, err := fd.strs("layers")
	if err != nil {
		return err
	}
	for _, s := range ls {
		h, err := parseHash(s, "layer digest")
		if err != nil {
			return err
		}
		t.Layers = append(t.Layers, h)
	}
	return nil
}

// records decodes the flat array of 4-value records.
func (fd *fieldDecoder) records(t *Trace) error {
	m, err := fd.d.DecodeArrayLen()
	if err != nil {
		return fmt.Errorf("trace: records: %w", err)
	}
	// A value takes at least one msgpack byte; the record count is
	// checked here, before the records are allocated or read.
	if err := fd.bound(m, 1, "records"); err != nil {
		return err
	}
	if m%4 != 0 {
		return fmt.Errorf("trace: records array of %d values is not made of 4-value records", m)
	}
	if m/4 > MaxRecords {
		return fmt.Errorf("trace: %d records, at most %d are read", m/4, MaxRecords)
	}
	t.Records = make([]Record, 0, m/4)
	for j := 0; j < m/4; j++ {
		r, err := fd.record(j)
		if err != nil {
			return err
		}
		t.Records = append(t.Records, r)
	}
	return nil
}

func (fd *fieldDecoder) record(j int) (Record, error) {
	var v [4]int64
	for k := range v {
		var err error
		if v[k], err = fd.d.DecodeInt64(); err != nil {
			return Record{}, fmt.Errorf("trace: record %d: %w", j, err)
		}
	}
	if v[0] < 0 || v[0] > 1<<20 {
		return Record{}, fmt.Errorf("trace: record %d names layer %d", j, v[0])
	}
	return Record{Layer: int(v[0]), Offset: v[1], Length: v[2], First: time.Duration(v[3])}, nil
}
