package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// hotFunction names one of the four per-request stages in work.go.
type hotFunction int

const (
	fnNone hotFunction = iota
	fnBuildRecords
	fnSortRecords
	fnEncodePayload
	fnChecksumPayload
)

// hotFunctionNames maps the -regress-function values to stages; the names
// are the Go function names as a profile shows them (without "main.").
var hotFunctionNames = map[string]hotFunction{
	"buildRecords":    fnBuildRecords,
	"sortRecords":     fnSortRecords,
	"encodePayload":   fnEncodePayload,
	"checksumPayload": fnChecksumPayload,
}

// validFunctionNames is the sorted list used in error messages and docs.
const validFunctionNames = "buildRecords, checksumPayload, encodePayload, sortRecords"

func parseHotFunction(name string) (hotFunction, error) {
	fn, ok := hotFunctionNames[strings.TrimPrefix(name, "main.")]
	if !ok {
		return fnNone, fmt.Errorf("unknown regress function %q (valid: %s)", name, validFunctionNames)
	}
	return fn, nil
}

// microUnit is the resolution of the fractional-work accumulator: work is
// counted in millionths of a unit, so +0.000001 units per call is still honoured.
const microUnit = 1_000_000

// regression holds the knobs that make the service slower on purpose. It is
// set up once before serving; only the accumulator changes afterwards.
type regression struct {
	function   hotFunction
	cpuPct     float64
	allocBytes int
	sleep      time.Duration
	sleepPct   float64       // share of calls that sleep, in %; 100 = every call
	lockHold   time.Duration // see layers.go
	lockEvery  int
	leakEvery  int
	syscalls   syscallKnob // see syscalls.go

	// pendingMicro accumulates the extra work owed across calls, in microUnits.
	pendingMicro atomic.Uint64
	lockCalls    atomic.Uint64
	leakCalls    atomic.Uint64
	// sleepMicro accumulates sleepPct/100 per call, in microUnits: a call sleeps when it crosses a unit.
	sleepMicro atomic.Uint64
}

// sleepThisCall is the sleep this call owes: -regress-sleep on sleepPct % of the calls, spread evenly
// (the calls that carry the accumulator past a whole unit), deterministically.
func (r *regression) sleepThisCall() time.Duration {
	if r == nil || r.sleep <= 0 || r.sleepPct <= 0 {
		return 0
	}
	owedMicro := uint64(r.sleepPct*(microUnit/100) + 0.5)
	after := r.sleepMicro.Add(owedMicro)
	if wholeUnitsCrossed(after-owedMicro, after) == 0 {
		return 0
	}
	return r.sleep
}

// extraUnits says how many extra work units a call of stage fn does when
// its normal work is `units` units (records, SHA-256 rounds, whole sorts).
// The extra work owed is units*cpuPct/100 per call; whole units are done as
// they accumulate, so over many calls the extra work is exactly +cpuPct % of
// the normal work (to 1e-6 units), even when it is less than a unit per call.
// Safe for concurrent use; a nil regression never asks for extra work.
func (r *regression) extraUnits(fn hotFunction, units int) int {
	if r == nil || fn != r.function || r.cpuPct <= 0 || units <= 0 {
		return 0
	}
	owedMicro := uint64(float64(units)*r.cpuPct*(microUnit/100) + 0.5)
	after := r.pendingMicro.Add(owedMicro)
	return wholeUnitsCrossed(after-owedMicro, after)
}

// wholeUnitsCrossed counts the unit boundaries between two accumulator
// readings: the calls that cross a boundary do the whole unit.
func wholeUnitsCrossed(beforeMicro, afterMicro uint64) int {
	return int(afterMicro/microUnit - beforeMicro/microUnit)
}

func (r *regression) active() bool {
	return r.cpuPct > 0 || r.allocBytes > 0 || (r.sleep > 0 && r.sleepPct > 0) || r.lockHold > 0 || r.leakEvery > 0 ||
		r.syscalls.active()
}

func (r *regression) String() string {
	name := "none"
	for n, fn := range hotFunctionNames {
		if fn == r.function {
			name = n
		}
	}
	return fmt.Sprintf("function=%s cpu_pct=%g alloc_bytes=%d sleep=%s sleep_pct=%g lock_hold=%s lock_every=%d "+
		"leak_every=%d %s", name, r.cpuPct, r.allocBytes, r.sleep, r.sleepPct, r.lockHold, r.lockEvery, r.leakEvery,
		&r.syscalls)
}
