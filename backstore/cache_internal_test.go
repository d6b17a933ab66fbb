package backstore

import (
	"math/rand/v2"
	"testing"
)

// TestHasAll compares the bytewise page check with one page at a time.
func TestHasAll(t *testing.T) {
	b := &cachedBlob{bits: make([]byte, 64), npages: 512}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 2000; round++ {
		for i := range b.bits {
			b.bits[i] = 0xff
			if rng.IntN(4) == 0 {
				b.bits[i] &^= 1 << rng.IntN(8)
			}
		}
		first := rng.IntN(512)
		last := first + rng.IntN(512-first)
		want := true
		for i := first; i <= last; i++ {
			want = want && b.has(i)
		}
		if got := b.hasAll(first, last); got != want {
			t.Fatalf("pages %d..%d: hasAll %v, one by one %v", first, last, got, want)
		}
	}
}
