package zfile_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/zfile"
)

const benchSize = 12 << 20

// benchInput is built once: 12 MiB in 1 MiB runs of random bytes, zeros
// and English-like text, the mix of the golden input, repeated four times.
var benchInput = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(11, 12))
	words := strings.Fields("the a of to and in is it that for on with as was be by this are or from at which an have not but were all when one there can more if out so what up about into than them some time could only other new")
	out := make([]byte, 0, benchSize)
	for len(out) < benchSize {
		run := make([]byte, 0, 1<<20)
		switch (len(out) >> 20) % 3 {
		case 0:
			for len(run) < 1<<20 {
				run = append(run, byte(r.Uint32()))
			}
		case 1:
			run = run[:1<<20]
		case 2:
			for len(run) < 1<<20 {
				run = append(run, words[r.IntN(len(words))]...)
				if r.IntN(12) == 0 {
					run = append(run, ".\n"...)
				} else {
					run = append(run, ' ')
				}
			}
			run = run[:1<<20]
		}
		out = append(out, run...)
	}
	return out
})

type benchConfig struct {
	algo zfile.Algorithm
	bs   int
}

func benchConfigs() []benchConfig {
	return []benchConfig{{zfile.LZ4, 4 << 10}, {zfile.LZ4, 32 << 10}, {zfile.Zstd, 4 << 10}, {zfile.Zstd, 32 << 10}}
}

func (c benchConfig) String() string { return fmt.Sprintf("%v/%dKiB", c.algo, c.bs>>10) }

func (c benchConfig) opts() []zfile.WriterOption {
	return []zfile.WriterOption{zfile.WithAlgorithm(c.algo), zfile.WithBlockSize(c.bs)}
}

// BenchmarkEncode measures the writer with its default parallelism
// (GOMAXPROCS workers); MB/s counts uncompressed bytes.
func BenchmarkEncode(b *testing.B) {
	in := benchInput()
	for _, c := range benchConfigs() {
		b.Run(c.String(), func(b *testing.B) {
			m := &memWriterAt{b: make([]byte, 0, len(in)+len(in)/8)}
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				m.b = m.b[:0]
				w, err := zfile.NewWriter(m, c.opts()...)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(in); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(m.b))/float64(len(in)), "ratio")
		})
	}
}

func openBench(b *testing.B, c benchConfig) *zfile.Reader {
	b.Helper()
	file := compress(b, benchInput(), c.opts()...)
	z, err := zfile.Open(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		b.Fatal(err)
	}
	return z
}

// BenchmarkDecodeSequential reads the file front to back in 128 KiB reads,
// as a sequential reader of the device would.
func BenchmarkDecodeSequential(b *testing.B) {
	in := benchInput()
	for _, c := range benchConfigs() {
		z := openBench(b, c)
		b.Run(c.String(), func(b *testing.B) {
			p := make([]byte, 128<<10)
			b.SetBytes(int64(len(p)))
			off := int64(0)
			for b.Loop() {
				if _, err := z.ReadAt(p, off); err != nil {
					b.Fatal(err)
				}
				if off += int64(len(p)); off+int64(len(p)) > int64(len(in)) {
					off = 0
				}
			}
		})
	}
}

// BenchmarkDecodeRandom reads 4 KiB at random 4 KiB-aligned offsets, as
// page faults and small file reads do: with 32 KiB blocks each read decodes
// eight times the bytes it returns.
func BenchmarkDecodeRandom(b *testing.B) {
	in := benchInput()
	r := rand.New(rand.NewPCG(13, 14))
	offs := make([]int64, 1<<14)
	for i := range offs {
		offs[i] = r.Int64N(int64(len(in))/4096) * 4096
	}
	for _, c := range benchConfigs() {
		z := openBench(b, c)
		b.Run(c.String(), func(b *testing.B) {
			p := make([]byte, 4096)
			b.SetBytes(int64(len(p)))
			i := 0
			for b.Loop() {
				if _, err := z.ReadAt(p, offs[i%len(offs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
