package lsmt_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// synthIndexes builds n layers of per mappings each, sorted and disjoint
// within a layer, of 1..256 sectors (512 B..128 KiB) at random gaps, spread
// over vsectors so that the layers overlap each other everywhere.
func synthIndexes(n, per int, vsectors uint64, seed uint64) [][]lsmt.Mapping {
	r := rand.New(rand.NewPCG(seed, seed+1))
	slot := vsectors / uint64(per)
	out := make([][]lsmt.Mapping, n)
	for li := range out {
		l := make([]lsmt.Mapping, 0, per)
		off, moff := r.Uint64N(slot), uint64(8)
		for range per {
			length := 1 + r.Uint64N(256)
			l = append(l, lsmt.Mapping{Offset: off, Length: uint32(length), MOffset: moff, Zeroed: r.IntN(20) == 0})
			moff += length
			off += length + r.Uint64N(2*(slot-128))
		}
		out[li] = l
	}
	return out
}

const (
	benchLayers   = 10
	benchPerLayer = 10_000
	benchVSectors = 1 << 24 // 8 GiB
)

func BenchmarkMerge(b *testing.B) {
	layers := synthIndexes(benchLayers, benchPerLayer, benchVSectors, 1)
	var x *lsmt.Index
	for b.Loop() {
		var err error
		if x, err = lsmt.Merge(layers...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(x.Len()), "merged-mappings")
}

// BenchmarkLookup looks up random ranges of 4 KiB..128 KiB in the merged
// index of 100,000 mappings in 10 layers.
func BenchmarkLookup(b *testing.B) {
	x, err := lsmt.Merge(synthIndexes(benchLayers, benchPerLayer, benchVSectors, 1)...)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(2, 3))
	type query struct{ start, end uint64 }
	qs := make([]query, 1<<16)
	for i := range qs {
		s := r.Uint64N(benchVSectors)
		qs[i] = query{s, s + 8 + r.Uint64N(249)}
	}
	var dst []lsmt.Mapping
	found := 0
	i := 0
	for b.Loop() {
		q := qs[i%len(qs)]
		dst = x.Lookup(dst[:0], q.start, q.end)
		found += len(dst)
		i++
	}
	b.ReportMetric(float64(found)/float64(i), "pieces/op")
}

// benchStack writes 10 layers of a 64 MiB device in memory, each holding
// 4..128 KiB extents over about a fifth of the device (one in ten a trim),
// and stacks them.
func benchStack(b *testing.B) *lsmt.Device {
	b.Helper()
	const vsize = 64 << 20
	r := rand.New(rand.NewPCG(4, 5))
	var layers []*lsmt.Layer
	for li := range benchLayers {
		var ext []lsmt.Extent
		for off := r.Int64N(64) * 4096; off < vsize; {
			n := min((1+r.Int64N(32))*4096, vsize-off)
			ext = append(ext, lsmt.Extent{Offset: off, Length: n, Zeroed: r.IntN(10) == 0})
			off += n + r.Int64N(8*n/4096)*4096
		}
		var buf bytes.Buffer
		if _, err := lsmt.WriteLayer(&buf, pattern(li), ext, vsize); err != nil {
			b.Fatal(err)
		}
		l, err := lsmt.OpenLayer(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			b.Fatal(err)
		}
		layers = append(layers, l)
	}
	d, err := lsmt.NewDevice(layers...)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkDeviceReadAt reads a merged in-memory 10-layer stack.
func BenchmarkDeviceReadAt(b *testing.B) {
	d := benchStack(b)
	r := rand.New(rand.NewPCG(6, 7))
	for _, size := range []int{4 << 10, 128 << 10} {
		offs := make([]int64, 1<<14)
		for i := range offs {
			offs[i] = r.Int64N((d.Size()-int64(size))/4096) * 4096
		}
		b.Run(fmt.Sprintf("random-%dKiB", size>>10), func(b *testing.B) {
			p := make([]byte, size)
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				if _, err := d.ReadAt(p, offs[i%len(offs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(d.Index().Len()), "merged-mappings")
		})
	}
	b.Run("sequential-128KiB", func(b *testing.B) {
		p := make([]byte, 128<<10)
		b.SetBytes(int64(len(p)))
		off := int64(0)
		for b.Loop() {
			if _, err := d.ReadAt(p, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
			if off += int64(len(p)); off >= d.Size() {
				off = 0
			}
		}
	})
}
