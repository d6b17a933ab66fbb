package imageref

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dejavu-project/dejavu/internal/testutil/testreg"
)

// TestRegistryThatNeverAnswers: resolving an image at a registry that takes
// connections but never answers fails with the request timeout, not after
// minutes.
func TestRegistryThatNeverAnswers(t *testing.T) {
	ref, err := Parse(testreg.Silent(t) + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Image(context.Background(), ref, WithRequestTimeout(300*time.Millisecond))
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("err = %v, want no answer within 300ms", err)
	}
	// A ping and then the manifest request may each take the timeout.
	if took > 5*time.Second {
		t.Errorf("took %s to give up", took)
	}
}

// TestLoopbackRegistryIsPlainHTTP: no TLS handshake is tried on a loopback
// registry, which dejavu reaches over plain HTTP.
func TestLoopbackRegistryIsPlainHTTP(t *testing.T) {
	upstream := testreg.Start(t).HelloWorld(t, "hello:obd")
	upstreamHost := strings.SplitN(upstream, "/", 2)[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var tlsHellos, plain atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go forwardUnlessTLS(c, upstreamHost, &tlsHellos, &plain)
		}
	}()
	ref, err := Parse(ln.Addr().String() + "/hello:obd")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Image(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if n := tlsHellos.Load(); n != 0 || plain.Load() == 0 {
		t.Errorf("%d TLS handshakes and %d plain connections to a loopback registry; want none and some", n, plain.Load())
	}
}

// forwardUnlessTLS counts a connection that opens with a TLS handshake
// record (0x16) and drops it; any other is forwarded to upstream.
func forwardUnlessTLS(c net.Conn, upstream string, tlsHellos, plain *atomic.Int64) {
	defer c.Close()
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	if first[0] == 0x16 {
		tlsHellos.Add(1)
		return
	}
	plain.Add(1)
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(up, br)
	io.Copy(c, up)
}
