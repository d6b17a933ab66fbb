package backstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// These servers answer multi-range requests in ways the real registries
// here do not (the distribution registry and ours send proper multipart
// bodies, go-containerregistry's answers the first range), but blob stores
// and proxies in front of registries do: fakes, for that reason only.

type rangeServer struct {
	blob     []byte
	mode     string // "join", "drop-last", "garbage", "whole"
	requests atomic.Int64
}

func (s *rangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	spec := strings.TrimPrefix(r.Header.Get("Range"), "bytes=")
	var rs [][2]int64
	for _, p := range strings.Split(spec, ",") {
		a, b, _ := strings.Cut(p, "-")
		ai, _ := strconv.ParseInt(a, 10, 64)
		bi, _ := strconv.ParseInt(b, 10, 64)
		rs = append(rs, [2]int64{ai, bi})
	}
	size := len(s.blob)
	switch {
	case s.mode == "whole":
		w.WriteHeader(http.StatusOK)
		w.Write(s.blob)
	case len(rs) == 1 || s.mode == "join":
		lo, hi := rs[0][0], rs[len(rs)-1][1]
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", lo, hi, size))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(s.blob[lo : hi+1])
	case s.mode == "garbage":
		w.Header().Set("Content-Type", "multipart/byteranges; boundary=xyz")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("--xyz\r\nContent-Range: bytes zz/1\r\n\r\nhello\r\n--xyz--\r\n"))
	default: // drop-last: a multipart body missing its last part
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, rg := range rs[:len(rs)-1] {
			pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", rg[0], rg[1], size)}})
			pw.Write(s.blob[rg[0] : rg[1]+1])
		}
		mw.Close()
		w.Header().Set("Content-Type", "multipart/byteranges; boundary="+mw.Boundary())
		w.WriteHeader(http.StatusPartialContent)
		io.Copy(w, &body)
	}
}

func fakeFetcher(t *testing.T, mode string) (*httpFetcher, *rangeServer) {
	blob := make([]byte, 1<<20)
	for i := range blob {
		blob[i] = byte(rand.N(256))
	}
	s := &rangeServer{blob: blob, mode: mode}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	reg := &registryClient{}
	reg.once.Do(func() {})
	reg.client, reg.base = srv.Client(), srv.URL+"/v2/app/blobs/"
	f := &httpFetcher{reg: reg, digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, size: int64(len(blob)),
		retry: retryPolicy{attempts: 3, idleTimeout: 5 * time.Second, backoff: time.Millisecond}, log: slog.New(slog.DiscardHandler)}
	return f, s
}

func TestMultiRangeAnswers(t *testing.T) {
	offs := []int64{4096, 65536, 300000, 900000}
	for _, tc := range []struct {
		mode     string
		requests int64 // for the first call
		multi    int32 // the verdict after it
	}{
		{"join", 1, multiYes},                           // one span covering all: fine
		{"drop-last", 2, multiYes},                      // the missing range asked again
		{"garbage", 3 + int64(len(offs)), multiUnknown}, // retried, then one by one this time
		{"whole", 1 + int64(len(offs)), multiNo},        // never again
	} {
		t.Run(tc.mode, func(t *testing.T) {
			f, s := fakeFetcher(t, tc.mode)
			bufs := make([][]byte, len(offs))
			for i := range bufs {
				bufs[i] = make([]byte, 5000)
			}
			if _, err := f.FetchRanges(context.Background(), offs, bufs, nil); err != nil {
				t.Fatal(err)
			}
			for i, off := range offs {
				if !bytes.Equal(bufs[i], s.blob[off:off+5000]) {
					t.Fatalf("range %d: wrong bytes", i)
				}
			}
			if n := s.requests.Load(); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if m := f.reg.multi.Load(); m != tc.multi {
				t.Errorf("multi-range verdict %d, want %d", m, tc.multi)
			}
		})
	}
}

func TestMultiRangeRejectsBadInput(t *testing.T) {
	f, _ := fakeFetcher(t, "join")
	if _, err := f.FetchRanges(context.Background(), []int64{0, 1 << 20}, [][]byte{make([]byte, 10), make([]byte, 10)}, nil); err == nil {
		t.Fatal("fetched a range past the end of the blob")
	}
	if _, err := f.FetchRanges(context.Background(), []int64{0}, nil, nil); err == nil {
		t.Fatal("fetched with fewer buffers than offsets")
	}
}

// bodyTransport answers every request with a fixed multipart body.
type bodyTransport struct {
	boundary string
	body     []byte
}

func (b bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{"Content-Type": {"multipart/byteranges; boundary=" + b.boundary}}
	return &http.Response{StatusCode: http.StatusPartialContent, Header: h, Body: io.NopCloser(bytes.NewReader(b.body)), Request: r}, nil
}

// FuzzMultipartAnswer feeds arbitrary multipart bodies to the multi-range
// reader: it may fail, never panic, and when it succeeds every asked byte
// came from a part that claimed it.
func FuzzMultipartAnswer(f *testing.F) {
	var seed bytes.Buffer
	mw := multipart.NewWriter(&seed)
	pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Range": {"bytes 10-19/100"}})
	pw.Write([]byte("0123456789"))
	pw, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Range": {"bytes 50-54/100"}})
	pw.Write([]byte("abcde"))
	mw.Close()
	f.Add(mw.Boundary(), seed.Bytes())
	f.Add("x", []byte("--x\r\nContent-Range: bytes 10-54/100\r\n\r\n"+strings.Repeat("z", 45)+"\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		reg := &registryClient{}
		reg.once.Do(func() {})
		reg.client, reg.base = &http.Client{Transport: bodyTransport{boundary, body}}, "http://fuzz/v2/app/blobs/"
		ft := &httpFetcher{reg: reg, digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, size: 100,
			retry: retryPolicy{attempts: 1, idleTimeout: time.Second, backoff: time.Millisecond}, log: slog.New(slog.DiscardHandler)}
		bufs := [][]byte{make([]byte, 10), make([]byte, 5)}
		err := ft.onceMulti(context.Background(), reg.client, reg.base+"x", []int64{10, 50}, bufs, func(int) {})
		if err == nil && string(bufs[0]) == "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" && !bytes.Contains(body, make([]byte, 10)) {
			t.Fatalf("success without the bytes of the first range")
		}
	})
}
