package backstore

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A run of adjacent pages is cut into pieces of maxPiece, asked for as one
// range of one request.
func TestRequestBuilderPieces(t *testing.T) {
	var rb requestBuilder
	pages := int(1 << 20 / pageSize)
	for p := range pages {
		rb.add(p)
	}
	rb.add(pages + 10) // not adjacent: a second range
	if len(rb.reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(rb.reqs))
	}
	r := rb.reqs[0]
	if len(r.runs) != (1<<20)/maxPiece+1 || r.spans != 2 {
		t.Fatalf("%d runs in %d ranges, want %d runs in 2", len(r.runs), r.spans, (1<<20)/maxPiece+1)
	}
	for _, run := range r.runs[:len(r.runs)-1] {
		if n := (run.last - run.first + 1) * pageSize; n != maxPiece {
			t.Errorf("run of %d bytes, want %d", n, maxPiece)
		}
	}
}

// A reader waiting for the first piece of a span gets it while the rest is
// still on its way: the server here sends the first piece, then holds the
// rest until the fetcher has handed that piece out (or five seconds pass,
// and the test fails).
func TestPiecesArriveAsTheyCome(t *testing.T) {
	blob := make([]byte, 4*maxPiece)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	first := make(chan struct{})
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ranges = append(ranges, r.Header.Get("Range"))
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(blob)-1, len(blob)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(blob[:maxPiece])
		w.(http.Flusher).Flush()
		select {
		case <-first:
		case <-time.After(5 * time.Second):
		}
		w.Write(blob[maxPiece:])
	}))
	t.Cleanup(srv.Close)
	reg := &registryClient{}
	reg.once.Do(func() {})
	reg.client, reg.base = srv.Client(), srv.URL+"/v2/app/blobs/"
	f := &httpFetcher{reg: reg, digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, size: int64(len(blob)),
		retry: retryPolicy{attempts: 1, idleTimeout: 10 * time.Second, backoff: time.Millisecond}, log: slog.New(slog.DiscardHandler)}
	offs := make([]int64, 4)
	bufs := make([][]byte, 4)
	for i := range offs {
		offs[i], bufs[i] = int64(i)*maxPiece, make([]byte, maxPiece)
	}
	var order []int
	start := time.Now()
	var firstAfter time.Duration
	_, err := f.FetchRanges(context.Background(), offs, bufs, func(i int) {
		order = append(order, i)
		if i == 0 {
			firstAfter = time.Since(start)
			close(first)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) != 1 || ranges[0] != fmt.Sprintf("bytes=0-%d", len(blob)-1) {
		t.Errorf("requests %q, want one for the whole span", ranges)
	}
	if len(order) != 4 || order[0] != 0 {
		t.Errorf("pieces reported in order %v", order)
	}
	if firstAfter >= 5*time.Second {
		t.Errorf("the first piece was handed out after %v: only once the whole span had come", firstAfter)
	}
	for i := range bufs {
		if string(bufs[i]) != string(blob[offs[i]:offs[i]+maxPiece]) {
			t.Errorf("piece %d: wrong bytes", i)
		}
	}
}
