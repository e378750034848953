package main

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
)

// The per-request work. Each stage is its own non-inlined function so that a
// CPU profile shows it as a named frame (main.buildRecords, main.sortRecords,
// main.encodePayload, main.checksumPayload); perfgate's tests and demo look
// for exactly these names. Each stage does the extra work of a CPU regression
// (see regress.go) inside itself, so the profile charges it to that stage.

const (
	defaultItems   = 64
	maxItems       = 100_000
	checksumRounds = 4
	samplesPerItem = 6
)

type record struct {
	ID      int       `json:"id"`
	Key     string    `json:"key"`
	Owner   string    `json:"owner"`
	Score   float64   `json:"score"`
	Tags    []string  `json:"tags"`
	Note    string    `json:"note"`
	Samples []float64 `json:"samples"`
}

var words = [...]string{
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
	"india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
}

// sink keeps results of extra (regression) work observable so the compiler
// cannot drop that work.
var sink atomic.Uint64

// buildRecords makes `items` records whose content depends only on name and items.
//
//go:noinline
func buildRecords(name string, items int, reg *regression) []record {
	rng := newRNG(name, items)
	records := make([]record, items)
	for i := range records {
		records[i] = makeRecord(name, i, &rng)
	}
	if extra := reg.extraUnits(fnBuildRecords, items); extra > 0 {
		scratch := make([]record, extra)
		for i := range scratch {
			scratch[i] = makeRecord(name, items+i, &rng)
		}
		sink.Add(uint64(len(scratch[extra-1].Note)))
	}
	return records
}

func makeRecord(owner string, id int, rng *xorshift) record {
	key := make([]byte, 0, 32)
	key = append(key, "greeter/record/"...)
	key = strconv.AppendUint(key, rng.next()%4096, 16)
	key = append(key, '/')
	key = strconv.AppendInt(key, int64(id), 10)
	note := make([]byte, 0, 96)
	for len(note) < 80 {
		note = append(note, words[rng.next()%uint64(len(words))]...)
		note = append(note, ' ')
	}
	samples := make([]float64, samplesPerItem)
	for i := range samples {
		samples[i] = math.Log1p(float64(rng.next()%1_000_000)) * math.Sqrt(float64(i+id+1))
	}
	return record{
		ID:    id,
		Key:   string(key),
		Owner: owner,
		Score: float64(rng.next()%1_000_000) / 1000,
		Tags: []string{
			words[rng.next()%uint64(len(words))],
			words[rng.next()%uint64(len(words))],
			words[rng.next()%uint64(len(words))],
		},
		Note:    string(note),
		Samples: samples,
	}
}

// sortRecords returns a copy of records ordered by first tag, then key, then ID.
//
//go:noinline
func sortRecords(records []record, reg *regression) []record {
	sorted := sortedCopy(records)
	for range reg.extraUnits(fnSortRecords, 1) {
		sink.Add(uint64(len(sortedCopy(records))))
	}
	return sorted
}

func sortedCopy(records []record) []record {
	sorted := slices.Clone(records)
	slices.SortStableFunc(sorted, func(a, b record) int {
		if c := cmp.Compare(a.Tags[0], b.Tags[0]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return sorted
}

// encodePayload is encoding/json over the records.
//
//go:noinline
func encodePayload(records []record, reg *regression) []byte {
	payload, err := json.Marshal(records)
	if err != nil {
		panic(err) // records hold only strings and numbers
	}
	if len(records) == 0 {
		return payload
	}
	extra := reg.extraUnits(fnEncodePayload, len(records))
	for ; extra > 0; extra -= len(records) {
		more, _ := json.Marshal(records[:min(extra, len(records))])
		sink.Add(uint64(len(more)))
	}
	return payload
}

// checksumPayload chains checksumRounds SHA-256 rounds over the payload.
//
//go:noinline
func checksumPayload(payload []byte, reg *regression) string {
	sum := chainSHA256(sha256.Sum256(payload), payload, checksumRounds-1)
	if extra := reg.extraUnits(fnChecksumPayload, checksumRounds); extra > 0 {
		more := chainSHA256(sum, payload, extra)
		sink.Add(uint64(more[0]))
	}
	return hex.EncodeToString(sum[:])
}

func chainSHA256(sum [sha256.Size]byte, payload []byte, rounds int) [sha256.Size]byte {
	h := sha256.New()
	for range rounds {
		h.Reset()
		h.Write(sum[:])
		h.Write(payload)
		h.Sum(sum[:0])
	}
	return sum
}

// allocBallast is the memory regression: n bytes on the heap, every page
// touched, held by the caller until the reply is built.
//
//go:noinline
func allocBallast(n int) []byte {
	if n <= 0 {
		return nil
	}
	ballast := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		ballast[i] = byte(i >> 12)
	}
	return ballast
}

// xorshift is a tiny deterministic generator: the same request always yields
// the same records and so the same checksum.
type xorshift uint64

func newRNG(name string, items int) xorshift {
	h := fnv.New64a()
	h.Write([]byte(name))
	seed := h.Sum64() ^ uint64(items)*0x9e3779b97f4a7c15
	if seed == 0 {
		seed = 1
	}
	return xorshift(seed)
}

func (x *xorshift) next() uint64 {
	v := uint64(*x)
	v ^= v << 13
	v ^= v >> 7
	v ^= v << 17
	*x = xorshift(v)
	return v
}
