package overlaybd

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

const tarBlock = 512

// tarPayloadOffset is where overlaybd's tar wrapper puts the layer: a PAX
// header block, one block of PAX records and the file's header block.
const tarPayloadOffset = 3 * tarBlock

// maxPAXSize bounds the PAX records we read: overlaybd's wrapper has room for
// one block only, and nothing larger is expected in front of a layer.
const maxPAXSize = tarBlock

// Unwrap finds the payload of a layer blob: inside a tar wrapper (PAX form
// with the payload at 1536, or plain ustar at 512) or the whole blob when it
// is not tar. It returns the payload's offset and size within the blob.
func Unwrap(ra io.ReaderAt, blobSize int64) (off, size int64, tarred bool, err error) {
	if blobSize < tarBlock {
		return 0, blobSize, false, nil
	}
	hdr := make([]byte, tarBlock)
	if _, err := ra.ReadAt(hdr, 0); err != nil {
		return 0, 0, false, fmt.Errorf("tar wrapper: read header: %w", err)
	}
	if !isTarHeader(hdr) {
		return 0, blobSize, false, nil
	}
	if hdr[156] == 'x' {
		n, err := tarNumber(hdr[124:136])
		if err != nil {
			return 0, 0, true, fmt.Errorf("tar wrapper: PAX header size field: %w", err)
		}
		if n <= 0 || n > maxPAXSize {
			return 0, 0, true, fmt.Errorf("tar wrapper: PAX records of %d bytes (want 1..%d)", n, maxPAXSize)
		}
		recs := make([]byte, n)
		if _, err := ra.ReadAt(recs, tarBlock); err != nil {
			return 0, 0, true, fmt.Errorf("tar wrapper: read PAX records: %w", err)
		}
		size, err = paxSize(recs)
		if err != nil {
			return 0, 0, true, fmt.Errorf("tar wrapper: %w", err)
		}
		if size < 0 || size > blobSize-tarPayloadOffset {
			return 0, 0, true, fmt.Errorf("tar wrapper: payload of %d bytes at %d does not fit in a blob of %d bytes", size, tarPayloadOffset, blobSize)
		}
		return tarPayloadOffset, size, true, nil
	}
	size, err = tarNumber(hdr[124:136])
	if err != nil {
		return 0, 0, true, fmt.Errorf("tar wrapper: size field: %w", err)
	}
	if size < 0 || size > blobSize-tarBlock {
		return 0, 0, true, fmt.Errorf("tar wrapper: payload of %d bytes at %d does not fit in a blob of %d bytes", size, tarBlock, blobSize)
	}
	return tarBlock, size, true, nil
}

// isTarHeader reports whether b is a ustar header with a valid checksum.
func isTarHeader(b []byte) bool {
	if !bytes.Equal(b[257:262], []byte("ustar")) {
		return false
	}
	want, err := tarNumber(b[148:156])
	if err != nil {
		return false
	}
	return int64(tarChecksum(b)) == want
}

// tarChecksum sums the header bytes with the checksum field read as spaces.
func tarChecksum(b []byte) int {
	sum := 0
	for i, c := range b[:tarBlock] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	return sum
}

// tarNumber parses an octal field (NUL/space padded) or a base-256 one.
func tarNumber(f []byte) (int64, error) {
	if len(f) > 0 && f[0]&0x80 != 0 {
		// Base-256: big-endian two's complement with the top bit as marker.
		if f[0]&0x40 != 0 {
			return 0, fmt.Errorf("negative base-256 number")
		}
		var n int64
		for i, c := range f {
			if i == 0 {
				c &= 0x7f
			}
			if n > (1<<55)-1 {
				return 0, fmt.Errorf("base-256 number overflows")
			}
			n = n<<8 | int64(c)
		}
		return n, nil
	}
	s := string(bytes.Trim(f, " \x00"))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 8, 64)
	if err != nil {
		return 0, fmt.Errorf("bad octal number %q", s)
	}
	return n, nil
}

// paxSize finds the size record in PAX extended header records.
func paxSize(recs []byte) (int64, error) {
	for len(recs) > 0 && recs[0] != 0 {
		sp := bytes.IndexByte(recs, ' ')
		if sp <= 0 {
			return 0, fmt.Errorf("malformed PAX record %q", truncate(recs))
		}
		n, err := strconv.Atoi(string(recs[:sp]))
		if err != nil || n <= sp+1 || n > len(recs) || recs[n-1] != '\n' {
			return 0, fmt.Errorf("malformed PAX record %q", truncate(recs))
		}
		kv := recs[sp+1 : n-1]
		if k, v, ok := bytes.Cut(kv, []byte("=")); ok && string(k) == "size" {
			size, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || size < 0 {
				return 0, fmt.Errorf("bad PAX size %q", v)
			}
			return size, nil
		}
		recs = recs[n:]
	}
	return 0, fmt.Errorf("PAX header has no size record")
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// TarHeader returns the 1536 bytes that overlaybd puts in front of a layer of
// payloadSize bytes: a PAX header named overlaybd.pax whose size record holds
// the length, and a ustar header for overlaybd.commit (its own size field is
// zero; readers take the PAX record).
func TarHeader(payloadSize int64) []byte {
	b := make([]byte, tarPayloadOffset)
	rec := paxRecord("size", strconv.FormatInt(payloadSize, 10))
	pax := b[:tarBlock]
	copy(pax, "overlaybd.pax")
	octalField(pax[124:136], int64(len(rec)), false)
	pax[156] = 'x'
	copy(pax[257:], "ustar\x00")
	copy(pax[263:], "00")
	octalField(pax[148:156], int64(tarChecksum(pax)), true)
	copy(b[tarBlock:], rec)

	f := b[2*tarBlock:]
	copy(f, "overlaybd.commit")
	octalField(f[100:108], 0o100644, true)
	octalField(f[108:116], 0, true)
	octalField(f[116:124], 0, true)
	octalField(f[124:136], 0, false)
	octalField(f[136:148], 0, false)
	f[156] = '0'
	copy(f[257:], "ustar\x00")
	copy(f[263:], "00")
	copy(f[265:], "root")
	copy(f[297:], "root")
	octalField(f[148:156], int64(tarChecksum(f)), true)
	return b
}

// TarTrailer returns what follows a payload of payloadSize bytes: zeros to
// the next 512-byte boundary and two zero blocks.
func TarTrailer(payloadSize int64) []byte {
	pad := (tarBlock - payloadSize%tarBlock) % tarBlock
	return make([]byte, pad+2*tarBlock)
}

// paxRecord formats "LEN key=value\n" where LEN counts the whole record.
func paxRecord(k, v string) string {
	body := " " + k + "=" + v + "\n"
	n := len(body) + 1
	for len(strconv.Itoa(n))+len(body) != n {
		n++
	}
	return strconv.Itoa(n) + body
}

// octalField writes n right-aligned in octal followed by a space, and a NUL
// when nul is set, the way libtar fills numeric fields.
func octalField(f []byte, n int64, nul bool) {
	w := len(f) - 1
	if nul {
		w--
	}
	s := fmt.Sprintf("%*o ", w, n)
	copy(f, s)
	if nul {
		f[len(f)-1] = 0
	}
}
