package main

import (
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSyscallKnobOffByDefault(t *testing.T) {
	cfg, err := parseConfig(nil, mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.regression.syscalls.active() || cfg.regression.active() {
		t.Errorf("regression %s", cfg.regression)
	}
	start := time.Now()
	if err := blockingRead(cfg.regression); err != nil || time.Since(start) > 50*time.Millisecond {
		t.Errorf("knob off: blockingRead took %s, err %v", time.Since(start), err)
	}
}

func TestSyscallKnobFromFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{"GREETER_REGRESS_SYSCALL_READ": "3ms", "GREETER_REGRESS_SYSCALL_PCT": "not-a-number"}
	cfg, err := parseConfig([]string{"-regress-syscall-pct", "25"}, mapEnv(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	k := &cfg.regression.syscalls
	if k.read != 3*time.Millisecond || k.pct != 25 || !cfg.regression.active() {
		t.Errorf("regression %s", cfg.regression)
	}
	if !strings.Contains(cfg.regression.String(), "syscall_read=3ms syscall_pct=25") {
		t.Errorf("String() = %s", cfg.regression)
	}
}

func TestSyscallKnobUsageErrors(t *testing.T) {
	for args, want := range map[string]string{
		"-regress-syscall-read=-1ms": "regress-syscall-read must be between 0",
		"-regress-syscall-read=2h":   "regress-syscall-read must be between 0",
		"-regress-syscall-pct=101":   "regress-syscall-pct must be between 0 and 100",
		"-regress-syscall-pct=NaN":   "regress-syscall-pct must be between 0 and 100",
	} {
		_, err := parseConfig([]string{args}, mapEnv(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", args, err, want)
		}
	}
}

// The read really waits in the kernel for the timer's byte, for every call at
// once (each reads a pipe of its own), and each call's pipe is closed after.
func TestBlockingReadWaitsForTheFeed(t *testing.T) {
	reg := &regression{syscalls: syscallKnob{read: 20 * time.Millisecond, pct: 100}}
	fdsBefore := openFds(t)
	var wg sync.WaitGroup
	durations := make([]time.Duration, 8)
	for i := range durations {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			start := time.Now()
			if err := blockingRead(reg); err != nil {
				t.Error(err)
			}
			durations[i] = time.Since(start)
		}(i)
	}
	wg.Wait()
	for i, d := range durations {
		if d < 15*time.Millisecond {
			t.Errorf("call %d returned after %s, before the feed", i, d)
		}
	}
	start := time.Now()
	if err := blockingRead(reg); err != nil || time.Since(start) < 15*time.Millisecond {
		t.Errorf("a later call returned after %s, err %v", time.Since(start), err)
	}
	if after := openFds(t); after != fdsBefore {
		t.Errorf("%d open file descriptors before the calls, %d after: a pipe was left open", fdsBefore, after)
	}
}

func openFds(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestSyscallPctSpreadsTheReads(t *testing.T) {
	k := &syscallKnob{read: time.Millisecond, pct: 10}
	reads := 0
	for range 1000 {
		if k.thisCall() {
			reads++
		}
	}
	if reads != 100 {
		t.Errorf("10 %% of 1000 calls: %d reads", reads)
	}
}
