package netshape

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// FaultKind is a kind of injected failure.
type FaultKind int

// Kinds of faults.
const (
	Fault5xx   FaultKind = iota // answer 503
	FaultReset                  // close the connection mid-response
	FaultStall                  // send part of the body, then nothing
	FaultFlip                   // flip one byte of the body
)

func (k FaultKind) String() string {
	return [...]string{"5xx", "reset", "stall", "flip"}[k]
}

// Faults says which requests fail and how.
type Faults struct {
	Rate     float64 // 0..1 of matching requests
	Kinds    []FaultKind
	Seed     uint64
	StallFor time.Duration // how long a stall lasts (default 1 minute)
	// Match selects the requests faults apply to; default: blob GETs.
	Match *regexp.Regexp
}

var blobGET = regexp.MustCompile(`^/v2/.+/blobs/sha256:[0-9a-f]{64}$`)

// Request is one request the proxy passed on.
type Request struct {
	Method, Path, Range string
	Status              int
	Bytes               int64
	Fault               string
	Start               time.Time
	Duration            time.Duration
}

// BlobRange reports whether the request was for a range of a blob, as
// lazy reads are (not a manifest, a referrers list or a whole blob).
func (r Request) BlobRange() bool { return blobGET.MatchString(r.Path) && r.Range != "" }

// Stats counts what went through.
type Stats struct {
	Requests   int64
	BlobRanges int64
	Bytes      int64
	Faults     map[string]int64
}

// Proxy is a running shaping proxy.
type Proxy struct {
	srv      *http.Server
	ln       net.Listener
	upstream *url.URL
	rp       *httputil.ReverseProxy

	rtt       atomic.Int64 // nanoseconds
	bandwidth atomic.Int64 // bytes per second, 0 unlimited
	bucket    tokenBucket

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	log    []Request
	stats  Stats
}

// Option configures Start.
type Option func(*Proxy)

// WithRTT sets the round-trip delay.
func WithRTT(d time.Duration) Option { return func(p *Proxy) { p.SetRTT(d) } }

// WithBandwidth sets the bandwidth limit in bytes per second.
func WithBandwidth(bps int64) Option { return func(p *Proxy) { p.SetBandwidth(bps) } }

// WithFaults sets the faults to inject.
func WithFaults(f Faults) Option { return func(p *Proxy) { p.SetFaults(f) } }

// Start starts a proxy on 127.0.0.1 in front of upstream (a base URL).
func Start(upstream string, opts ...Option) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("netshape: upstream %q: %w", upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netshape: %w", err)
	}
	p := &Proxy{ln: ln, upstream: u, stats: Stats{Faults: map[string]int64{}}}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.ErrorLog = nil
	p.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
	p.SetFaults(Faults{})
	for _, o := range opts {
		o(p)
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Addr returns host:port of the proxy.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns the proxy's base URL.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Close stops the proxy, cutting connections in flight.
func (p *Proxy) Close() error { return p.srv.Close() }

// Unshaped lifts the delay and the bandwidth limit until restore is
// called, for traffic that is not measured (filling a cache before warm
// starts).
func (p *Proxy) Unshaped() (restore func()) {
	rtt, bw := p.rtt.Swap(0), p.bandwidth.Swap(0)
	return func() { p.rtt.Store(rtt); p.bandwidth.Store(bw) }
}

// SetRTT changes the round-trip delay.
func (p *Proxy) SetRTT(d time.Duration) { p.rtt.Store(int64(d)) }

// SetBandwidth changes the bandwidth limit (bytes per second, 0: none).
func (p *Proxy) SetBandwidth(bps int64) { p.bandwidth.Store(bps) }

// SetFaults changes the faults injected from now on.
func (p *Proxy) SetFaults(f Faults) {
	if f.Match == nil {
		f.Match = blobGET
	}
	if f.StallFor == 0 {
		f.StallFor = time.Minute
	}
	p.mu.Lock()
	p.faults = f
	p.rng = rand.New(rand.NewPCG(f.Seed, 0x5eed))
	p.mu.Unlock()
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Faults = map[string]int64{}
	for k, v := range p.stats.Faults {
		s.Faults[k] = v
	}
	return s
}

// Requests returns the request log.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// Reset clears the counters and the log.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = nil
	p.stats = Stats{Faults: map[string]int64{}}
}

// pickFault decides whether this request fails, and how.
func (p *Proxy) pickFault(r *http.Request) (FaultKind, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	if f.Rate <= 0 || len(f.Kinds) == 0 || r.Method != http.MethodGet || !f.Match.MatchString(r.URL.Path) {
		return 0, false
	}
	if p.rng.Float64() >= f.Rate {
		return 0, false
	}
	return f.Kinds[p.rng.IntN(len(f.Kinds))], true
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	half := time.Duration(p.rtt.Load()) / 2
	sleep(r.Context(), half)
	kind, faulty := p.pickFault(r)
	rec := Request{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Start: start}
	if faulty {
		rec.Fault = kind.String()
	}
	sw := &shapedWriter{ResponseWriter: w, p: p, delay: half, ctx: r.Context()}
	// The reverse proxy aborts a response whose copy fails by panicking;
	// count the request either way.
	defer func() {
		rec.Status, rec.Bytes, rec.Duration = sw.statusOr200(), sw.written, time.Since(start)
		p.mu.Lock()
		p.stats.Requests++
		if rec.BlobRange() {
			p.stats.BlobRanges++
		}
		p.stats.Bytes += sw.written
		if faulty {
			p.stats.Faults[kind.String()]++
		}
		p.log = append(p.log, rec)
		p.mu.Unlock()
	}()
	if faulty && kind == Fault5xx {
		sleep(r.Context(), half)
		sw.status = http.StatusServiceUnavailable
		http.Error(w, "injected failure", http.StatusServiceUnavailable)
		return
	}
	if faulty {
		sw.fault, sw.hasFault = kind, true
		sw.rng = p.faultRNG()
		sw.stallFor = p.stallFor()
	}
	p.rp.ServeHTTP(sw, r)
}

func (p *Proxy) faultRNG() *rand.Rand {
	p.mu.Lock()
	defer p.mu.Unlock()
	return rand.New(rand.NewPCG(p.rng.Uint64(), 1))
}

func (p *Proxy) stallFor() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults.StallFor
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// shapedWriter delays the response by half an RTT, paces the body to the
// bandwidth, and applies a body fault.
type shapedWriter struct {
	http.ResponseWriter
	p       *Proxy
	ctx     context.Context
	delay   time.Duration
	status  int
	written int64

	hasFault bool
	fault    FaultKind
	rng      *rand.Rand
	stallFor time.Duration
	flipAt   int64
	cut      int64 // bytes after which reset/stall strikes
	struck   bool
}

func (s *shapedWriter) statusOr200() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

func (s *shapedWriter) WriteHeader(code int) {
	sleep(s.ctx, s.delay)
	s.status = code
	if s.hasFault {
		n, _ := parseLength(s.Header().Get("Content-Length"))
		if n <= 0 {
			n = 1
		}
		s.flipAt = s.rng.Int64N(n)
		s.cut = s.rng.Int64N(n)
	}
	s.ResponseWriter.WriteHeader(code)
}

func parseLength(v string) (int64, error) {
	var n int64
	_, err := fmt.Sscan(v, &n)
	return n, err
}

const chunk = 16 << 10

func (s *shapedWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	total := 0
	for len(b) > 0 {
		n := min(len(b), chunk)
		part := b[:n]
		if s.hasFault && !s.struck {
			switch s.fault {
			case FaultFlip:
				if s.flipAt >= s.written && s.flipAt < s.written+int64(n) {
					part = append([]byte(nil), part...)
					part[s.flipAt-s.written] ^= 0xff
					s.struck = true
				}
			case FaultReset, FaultStall:
				if s.cut < s.written+int64(n) {
					keep := s.cut - s.written
					if keep > 0 {
						s.ResponseWriter.Write(part[:keep])
						s.written += keep
					}
					s.struck = true
					if f, ok := s.ResponseWriter.(http.Flusher); ok {
						f.Flush()
					}
					if s.fault == FaultStall {
						sleep(s.ctx, s.stallFor)
					}
					s.abort()
					return total, io.ErrClosedPipe
				}
			}
		}
		s.p.bucket.take(s.ctx, int64(n), s.p.bandwidth.Load())
		w, err := s.ResponseWriter.Write(part)
		s.written += int64(w)
		total += w
		if err != nil {
			return total, err
		}
		b = b[n:]
	}
	return total, nil
}

// abort closes the client connection without finishing the response.
func (s *shapedWriter) abort() {
	if hj, ok := s.ResponseWriter.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, not FIN
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *shapedWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// burst is how far behind its schedule the link may fall and catch up.
const burst = 10 * time.Millisecond

// tokenBucket paces bytes to a rate shared by all connections.
type tokenBucket struct {
	mu   sync.Mutex
	next time.Time // when the link is free again
}

func (t *tokenBucket) take(ctx context.Context, n, rate int64) {
	if rate <= 0 {
		return
	}
	t.mu.Lock()
	now := time.Now()
	// A sender that slept past its turn may catch up by up to burst: a
	// sleep overshoots by about a millisecond, and without the catch-up a
	// lone stream would get only part of the link.
	if earliest := now.Add(-burst); t.next.Before(earliest) {
		t.next = earliest
	}
	t.next = t.next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	wait := time.Until(t.next)
	t.mu.Unlock()
	sleep(ctx, wait)
}
