package testenv

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback host:port that nothing listens on now, for a
// server the test starts by address (another process may take it first,
// which is rare enough on a test machine).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
