package overlaybd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// smallBlob writes a tiny layer blob for fuzz seeds.
func smallBlob(t testing.TB, opts ...BlobOption) []byte {
	src := bytes.Repeat([]byte("fuzz seed data! "), 1024) // 16 KiB
	var m memFile
	if _, err := WriteBlob(&m, bytes.NewReader(src), []lsmt.Extent{{Offset: 0, Length: 8192}, {Offset: 12288, Length: 4096}}, 64<<10, opts...); err != nil {
		t.Fatal(err)
	}
	return m.b
}

func FuzzUnwrap(f *testing.F) {
	f.Add(append(TarHeader(5), []byte("hello")...))
	f.Add(smallBlob(f)[:2048])
	f.Add([]byte("not a tar at all"))
	plain := make([]byte, 1024)
	copy(plain, "file")
	copy(plain[257:], "ustar\x0000")
	octalField(plain[124:136], 100, false)
	octalField(plain[148:156], int64(tarChecksum(plain)), true)
	f.Add(plain)
	f.Fuzz(func(t *testing.T, b []byte) {
		off, size, _, err := Unwrap(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if off < 0 || size < 0 || off+size > int64(len(b)) {
			t.Fatalf("payload %d+%d outside a blob of %d bytes", off, size, len(b))
		}
	})
}

func FuzzOpenBlob(f *testing.F) {
	f.Add(smallBlob(f))
	f.Add(smallBlob(f, WithCompression("zstd")))
	f.Add(smallBlob(f, WithCompression("none"), WithTar(false)))
	f.Fuzz(func(t *testing.T, b []byte) {
		blob, err := OpenBlob(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		d, err := OpenDevice(blob)
		if err != nil {
			return
		}
		if d.Size() > 1<<20 {
			return // a forged virtual size: reading all of it is not the point
		}
		buf := make([]byte, d.Size())
		_, _ = d.ReadAt(buf, 0)
		s, e := blob.BlobRange(0, d.Size())
		if s > e || e > blob.Size {
			t.Fatalf("BlobRange %d-%d outside a blob of %d bytes", s, e, blob.Size)
		}
	})
}

func TestUnwrapBadInput(t *testing.T) {
	good := append(TarHeader(100), make([]byte, 100)...)
	corrupt := func(f func(b []byte)) []byte {
		b := append([]byte{}, good...)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name string
		blob []byte
		want string // "" means: not tar, whole blob is the payload
	}{
		{"bad checksum is not tar", corrupt(func(b []byte) { b[0] = 'X' }), ""},
		{"size past end", append(TarHeader(1<<40), make([]byte, 10)...), "does not fit"},
		{"no size record", withRecords(good, "16 path=abcdefg\n"), "no size record"},
		{"malformed record", corrupt(func(b []byte) { copy(b[512:], "99 size=1\n") }), "malformed PAX record"},
		{"PAX records too large", corrupt(func(b []byte) {
			octalField(b[124:136], 1<<20, false)
			octalField(b[148:156], int64(tarChecksum(b[:512])), true)
		}), "PAX records of"},
		{"negative size", withRecords(good, "12 size=-50\n"), "bad PAX size"},
		{"size not a number", withRecords(good, "12 size=0x5\n"), "bad PAX size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off, size, tarred, err := Unwrap(bytes.NewReader(tc.blob), int64(len(tc.blob)))
			if tc.want == "" {
				if err != nil || tarred || off != 0 || size != int64(len(tc.blob)) {
					t.Fatalf("got %d+%d tar=%v err=%v, want the raw blob", off, size, tarred, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOpenBlobBadInput(t *testing.T) {
	good := smallBlob(t)
	for _, tc := range []struct {
		name string
		blob []byte
		want string
	}{
		{"garbage payload", append(TarHeader(64), bytes.Repeat([]byte{0xAB}, 64+1024)...), "neither ZFile nor LSMT"},
		{"truncated", good[:len(good)/2], "does not fit"},
		{"short payload", append(TarHeader(10), make([]byte, 10+1024)...), "too short for a layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenBlob(bytes.NewReader(tc.blob), int64(len(tc.blob)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// withRecords replaces the PAX records of a wrapped blob, fixing the PAX
// header's size field and checksum so that only the records are wrong.
func withRecords(blob []byte, recs string) []byte {
	b := append([]byte{}, blob...)
	clear(b[512:1024])
	copy(b[512:], recs)
	octalField(b[124:136], int64(len(recs)), false)
	octalField(b[148:156], int64(tarChecksum(b[:512])), true)
	return b
}
