package main

import (
	"errors"
	"io"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLayerKnobsOffByDefaultAndProfilingRatesOn(t *testing.T) {
	cfg, err := parseConfig(nil, mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.regression
	if r.lockHold != 0 || r.leakEvery != 0 || r.lockEvery != defaultLockEvery || r.active() {
		t.Errorf("regression %s", r)
	}
	if cfg.rates != (profilingRates{mutexFraction: defaultMutexFraction, blockRate: defaultBlockRateNanos}) {
		t.Errorf("rates %+v", cfg.rates)
	}
}

func TestLayerKnobsFromFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{
		"GREETER_REGRESS_LOCK_HOLD":      "2ms",
		"GREETER_REGRESS_LOCK_EVERY":     "not-a-number", // ignored: the flag is given
		"GREETER_REGRESS_LEAK_EVERY":     "50",
		"GREETER_MUTEX_PROFILE_FRACTION": "0",
		"GREETER_BLOCK_PROFILE_RATE":     "1000",
	}
	cfg, err := parseConfig([]string{"-regress-lock-every", "7"}, mapEnv(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.regression
	if r.lockHold != 2*time.Millisecond || r.lockEvery != 7 || r.leakEvery != 50 || !r.active() {
		t.Errorf("regression %s", r)
	}
	if cfg.rates != (profilingRates{mutexFraction: 0, blockRate: 1000}) {
		t.Errorf("rates %+v", cfg.rates)
	}
}

func TestLayerKnobUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"-regress-lock-hold", "-1ms"}, want: "regress-lock-hold must not be negative"},
		{args: []string{"-regress-lock-every", "0"}, want: "regress-lock-every must be between 1"},
		{args: []string{"-regress-leak-every", "-3"}, want: "regress-leak-every must be between 0"},
		{args: []string{"-mutex-profile-fraction", "-1"}, want: "mutex-profile-fraction"},
		{args: []string{"-block-profile-rate", "-1"}, want: "block-profile-rate"},
		{env: map[string]string{"GREETER_REGRESS_LEAK_EVERY": "often"}, want: "GREETER_REGRESS_LEAK_EVERY"},
		{env: map[string]string{"GREETER_REGRESS_LOCK_HOLD": "long"}, want: "GREETER_REGRESS_LOCK_HOLD"},
	}
	for _, c := range cases {
		_, err := parseConfig(c.args, mapEnv(c.env), io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("args %q env %v: got %v, want a usage error containing %q", c.args, c.env, err, c.want)
		}
	}
}

func TestLeakStartsOneGoroutineEveryNCalls(t *testing.T) {
	reg := &regression{leakEvery: 25}
	before, goroutinesBefore := leaked.Load(), runtime.NumGoroutine()
	for range 1000 {
		maybeLeak(reg, "x")
	}
	if got := leaked.Load() - before; got != 40 {
		t.Errorf("leaked %d goroutines in 1000 calls, want 40", got)
	}
	if got := runtime.NumGoroutine() - goroutinesBefore; got < 40 {
		t.Errorf("goroutine count rose by %d, want at least 40 (they must stay alive)", got)
	}
	maybeLeak(&regression{}, "x")
	maybeLeak(nil, "x")
	if got := leaked.Load() - before; got != 40 {
		t.Errorf("leak knob off still leaked (total %d)", got)
	}
}

// The contended lock shows in the runtime's own mutex profile, charged to greetingPrefix.
func TestLockRegressionIsContendedInGreetingPrefix(t *testing.T) {
	previous := runtime.SetMutexProfileFraction(1)
	defer runtime.SetMutexProfileFraction(previous)
	if got := greetingPrefix(&regression{}); got != "Hello, " {
		t.Fatalf("lock knob off: prefix %q", got)
	}
	before := mutexDelayIn(t, "greetingPrefix")
	reg := &regression{lockHold: 2 * time.Millisecond, lockEvery: 10}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if got := greetingPrefix(reg); got != "Hello, " {
					t.Errorf("prefix %q", got)
				}
			}
		}()
	}
	wg.Wait()
	if reg.lockCalls.Load() != 160 {
		t.Errorf("%d calls took the lock, want 160", reg.lockCalls.Load())
	}
	// 16 holds of 2 ms with up to 7 waiters each: far more than 2 ms of delay in all.
	if delay := mutexDelayIn(t, "greetingPrefix") - before; delay < 2*time.Millisecond {
		t.Errorf("mutex profile charges %s of delay to main.greetingPrefix, want more than 2ms", delay)
	}
}

// mutexDelayIn sums the delay of the runtime's mutex profile records with the
// function fn on the stack (main.fn in the binary; the module path in a test), read from its text form (cycles/second, then "cycles count @ pcs"
// lines each followed by its "#\tpc\tfunction+off\tfile:line" frames).
func mutexDelayIn(t *testing.T, fn string) time.Duration {
	var text strings.Builder
	if err := pprof.Lookup("mutex").WriteTo(&text, 1); err != nil {
		t.Fatal(err)
	}
	var perSecond, cycles, total float64
	for _, line := range strings.Split(text.String(), "\n") {
		if rate, found := strings.CutPrefix(line, "cycles/second="); found {
			perSecond, _ = strconv.ParseFloat(rate, 64)
		} else if head, _, found := strings.Cut(line, " @ "); found {
			cycles = 0
			if fields := strings.Fields(head); len(fields) == 2 {
				cycles, _ = strconv.ParseFloat(fields[0], 64)
			}
		} else if fields := strings.Fields(line); len(fields) >= 3 && fields[0] == "#" &&
			strings.HasSuffix(strings.Split(fields[2], "+")[0], "."+fn) {
			total += cycles
			cycles = 0 // once per record
		}
	}
	if perSecond <= 0 {
		t.Fatalf("no cycles/second in the mutex profile:\n%s", text.String())
	}
	return time.Duration(total / perSecond * 1e9)
}
