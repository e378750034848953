package gobench

import (
	"strconv"
	"testing"
)

var sink int

func BenchmarkFib(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink += fib(22)
	}
}

func BenchmarkEvenOdd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if isEven(5000 + i%2) {
			sink++
		}
	}
}

func BenchmarkHashWords(b *testing.B) {
	words := make([]string, 2000)
	for i := range words {
		words[i] = "word-" + strconv.Itoa(i*7919)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink += int(hashWords(words))
	}
}

func BenchmarkGeneric(b *testing.B) {
	ints := make([]int, 4096)
	floats := make([]float64, 4096)
	for i := range ints {
		ints[i], floats[i] = i, float64(i)/3
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink += Sum(ints) + int(Sum(floats))
	}
}

func BenchmarkChecksum(b *testing.B) {
	t := &table{rows: make([][]byte, 64)}
	for i := range t.rows {
		t.rows[i] = []byte(strconv.Itoa(i) + "-row-payload-0123456789abcdef")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink += int(t.checksum())
	}
}

func BenchmarkDeepClosure(b *testing.B) {
	words := make([]string, 300)
	for i := range words {
		words[i] = strconv.Itoa((i * 104729) % 1000)
	}
	for i := 0; i < b.N; i++ {
		sink += descend(40, func() int { return len(sortedCopy(words)[0]) })
	}
}
