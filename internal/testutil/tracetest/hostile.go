package tracetest

import (
	"bytes"
	"encoding/binary"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/dejavu-project/dejavu/trace"
)

// ManyRecords returns an encoder for PushUnchecked of issue 13's hostile
// trace: n one-byte records, all the same range of the image's bottom
// layer (~22 KB for 62 M records), of workload "hostile". It is written
// here, not with trace.Marshal, which would need the records in memory
// first.
func ManyRecords(t testing.TB, n int) func(image v1.Hash, layers []v1.Descriptor) []byte {
	return func(image v1.Hash, layers []v1.Descriptor) []byte {
		t.Helper()
		var out bytes.Buffer
		out.WriteString("DJVTRACE")
		out.Write(binary.LittleEndian.AppendUint16(nil, trace.Version))
		zw, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		e := msgpack.NewEncoder(zw)
		e.EncodeMapLen(4)
		e.EncodeString("image")
		e.EncodeString(image.String())
		e.EncodeString("workload")
		e.EncodeString("hostile")
		e.EncodeString("layers")
		e.EncodeArrayLen(len(layers))
		for _, l := range layers {
			e.EncodeString(l.Digest.String())
		}
		e.EncodeString("records")
		e.EncodeArrayLen(4 * n)
		chunk := bytes.Repeat([]byte{0, 0, 1, 0}, 1<<18) // {layer 0, offset 0, length 1, first 0}
		for left := n; left > 0; left -= 1 << 18 {
			zw.Write(chunk[:4*min(left, 1<<18)])
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
}
