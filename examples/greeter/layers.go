package main

import (
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The regressions below the CPU: a contended lock and a goroutine leak, each
// in its own named function so that the mutex, block and goroutine profiles
// name it (main.greetingPrefix, main.leakWatcher). The allocation regression
// (-regress-alloc-bytes, main.allocBallast) lives in work.go. Also the
// runtime's profiling rates: without them the mutex and block profiles stay
// empty.

const (
	defaultLockEvery      = 100
	defaultMutexFraction  = 10
	defaultBlockRateNanos = 10_000
	maxEvery              = 1_000_000_000
)

// layerFlags are the knobs of this file, read like the others in main.go:
// flag first, then the environment variable when the flag was not given.
type layerFlags struct {
	lockHold      *time.Duration
	lockEvery     *int
	leakEvery     *int
	mutexFraction *int
	blockRate     *int
}

func addLayerFlags(fs *flag.FlagSet) layerFlags {
	return layerFlags{
		lockHold: fs.Duration("regress-lock-hold", 0,
			"every -regress-lock-every'th call holds the lock all calls take for this long, e.g. 1ms [env GREETER_REGRESS_LOCK_HOLD]"),
		lockEvery: fs.Int("regress-lock-every", defaultLockEvery,
			"which calls hold the lock for -regress-lock-hold: one in N [env GREETER_REGRESS_LOCK_EVERY]"),
		leakEvery: fs.Int("regress-leak-every", 0,
			"one call in N starts a goroutine that never ends; 0 = none [env GREETER_REGRESS_LEAK_EVERY]"),
		mutexFraction: fs.Int("mutex-profile-fraction", defaultMutexFraction,
			"runtime.SetMutexProfileFraction: 1 in N contention events sampled; 0 = off [env GREETER_MUTEX_PROFILE_FRACTION]"),
		blockRate: fs.Int("block-profile-rate", defaultBlockRateNanos,
			"runtime.SetBlockProfileRate in ns: one blocking event per N ns spent blocked; 0 = off [env GREETER_BLOCK_PROFILE_RATE]"),
	}
}

// envSetters lists each of these flags with its environment variable.
func (f layerFlags) envSetters() []envSetter {
	atoi := func(target *int) func(string) error {
		return func(v string) (err error) {
			*target, err = strconv.Atoi(v)
			return err
		}
	}
	return []envSetter{
		{"regress-lock-hold", "GREETER_REGRESS_LOCK_HOLD", func(v string) (err error) {
			*f.lockHold, err = time.ParseDuration(v)
			return err
		}},
		{"regress-lock-every", "GREETER_REGRESS_LOCK_EVERY", atoi(f.lockEvery)},
		{"regress-leak-every", "GREETER_REGRESS_LEAK_EVERY", atoi(f.leakEvery)},
		{"mutex-profile-fraction", "GREETER_MUTEX_PROFILE_FRACTION", atoi(f.mutexFraction)},
		{"block-profile-rate", "GREETER_BLOCK_PROFILE_RATE", atoi(f.blockRate)},
	}
}

type envSetter struct {
	flag  string
	env   string
	apply func(string) error
}

func (f layerFlags) validate() error {
	switch {
	case *f.lockHold < 0:
		return fmt.Errorf("regress-lock-hold must not be negative, got %s", *f.lockHold)
	case *f.lockEvery < 1 || *f.lockEvery > maxEvery:
		return fmt.Errorf("regress-lock-every must be between 1 and %d, got %d", maxEvery, *f.lockEvery)
	case *f.leakEvery < 0 || *f.leakEvery > maxEvery:
		return fmt.Errorf("regress-leak-every must be between 0 and %d, got %d", maxEvery, *f.leakEvery)
	case *f.mutexFraction < 0:
		return fmt.Errorf("mutex-profile-fraction must not be negative, got %d", *f.mutexFraction)
	case *f.blockRate < 0:
		return fmt.Errorf("block-profile-rate must not be negative, got %d", *f.blockRate)
	}
	return nil
}

// profilingRates are the runtime's sampling rates for the mutex and block profiles.
type profilingRates struct {
	mutexFraction int
	blockRate     int
}

// apply sets the rates process-wide; run calls it before serving.
func (p profilingRates) apply() {
	runtime.SetMutexProfileFraction(p.mutexFraction)
	runtime.SetBlockProfileRate(p.blockRate)
}

// greetings is the state every call reads under one process-wide lock when the
// lock regression is on.
var greetings = struct {
	sync.Mutex
	prefix string
}{prefix: "Hello, "}

// greetingPrefix is the contended-lock regression. Off, it returns the prefix
// without locking. On, every call takes the shared lock, and every lockEvery'th
// call holds it for lockHold (a slow refresh under the lock), so the calls
// arriving meanwhile wait: the mutex profile charges their delay to this
// function (where the holder unlocks), the block profile to its Lock call.
//
//go:noinline
func greetingPrefix(reg *regression) string {
	if reg == nil || reg.lockHold <= 0 {
		return "Hello, "
	}
	greetings.Lock()
	defer greetings.Unlock()
	if reg.lockCalls.Add(1)%uint64(max(reg.lockEvery, 1)) == 0 {
		time.Sleep(reg.lockHold)
	}
	return greetings.prefix
}

// leakForever is never closed: a goroutine waiting on it never ends.
var leakForever = make(chan struct{})

// leaked counts the goroutines leakWatcher started (for tests).
var leaked atomic.Int64

// maybeLeak is the goroutine-leak regression: one call in leakEvery starts a
// leakWatcher, which waits forever (a watcher nobody stops).
func maybeLeak(reg *regression, name string) {
	if reg == nil || reg.leakEvery <= 0 {
		return
	}
	if reg.leakCalls.Add(1)%uint64(reg.leakEvery) == 0 { // leakEvery > 0 here
		leaked.Add(1)
		go leakWatcher(name)
	}
}

// leakWatcher is the function a goroutine profile shows the leaked goroutines in.
//
//go:noinline
func leakWatcher(name string) {
	<-leakForever
	sink.Add(uint64(len(name)))
}
