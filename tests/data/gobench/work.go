// Package gobench is a small CPU-bound Go program whose CPU profile exercises what
// perfgate's pprof parser must get right: recursion (direct and mutual), inlined
// helpers, closures, generic functions, pointer-receiver methods and a deep stack.
// tests/e2e/test_pprof_agreement.py profiles it with `go test -bench . -cpuprofile`
// and checks perfgate's per-function figures against `go tool pprof -top`.
package gobench

import (
	"hash/crc32"
	"sort"
	"strings"
)

// fib recurses directly: its cum must count each sample once, not once per frame.
func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

// isEven and isOdd recurse through each other.
func isEven(n int) bool {
	if n == 0 {
		return true
	}
	return isOdd(n - 1)
}

func isOdd(n int) bool {
	if n == 0 {
		return false
	}
	return isEven(n - 1)
}

// mix is small enough for the compiler to inline into its callers.
func mix(h, v uint32) uint32 {
	h ^= v
	h *= 16777619
	return h
}

func hashWords(words []string) uint32 {
	var h uint32 = 2166136261
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			h = mix(h, uint32(w[i]))
		}
	}
	return h
}

// Sum is generic: Go names its instances like gobench.Sum[...].
func Sum[T int | float64](xs []T) T {
	var s T
	for _, x := range xs {
		s += x * x
	}
	return s
}

type table struct {
	rows [][]byte
}

// checksum has a pointer receiver: pprof shows gobench.(*table).checksum.
func (t *table) checksum() uint32 {
	var c uint32
	for _, r := range t.rows {
		c ^= crc32.ChecksumIEEE(r)
	}
	return c
}

// descend builds a deep stack before doing work at the bottom.
func descend(depth int, work func() int) int {
	if depth == 0 {
		return work()
	}
	return descend(depth-1, work) + 1
}

func sortedCopy(words []string) []string {
	out := append([]string(nil), words...)
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i], out[j]) < 0 })
	return out
}
