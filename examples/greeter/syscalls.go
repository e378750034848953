package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// The blocking-syscall regression: a call makes one extra read() of a pipe of
// its own that a timer feeds -regress-syscall-read later, so its thread waits
// in the kernel, inside read(), for about that long. A syscall tracer sees a
// slower read() and more read() calls per request (and the pipe2() and two
// close() around it); a CPU profile sees nothing (the thread sleeps). Go timers fire no sooner than about 1 ms on Linux, so the
// read lasts at least that long whatever D is.

const maxSyscallRead = time.Minute

type syscallFlags struct {
	read *time.Duration
	pct  *float64
}

func addSyscallFlags(fs *flag.FlagSet) syscallFlags {
	return syscallFlags{
		read: fs.Duration("regress-syscall-read", 0,
			"one extra blocking read() per call, of a pipe a timer feeds this much later, e.g. 1ms [env GREETER_REGRESS_SYSCALL_READ]"),
		pct: fs.Float64("regress-syscall-pct", 100,
			"percentage of calls that do the -regress-syscall-read, spread evenly [env GREETER_REGRESS_SYSCALL_PCT]"),
	}
}

// envSetters lists each of these flags with its environment variable.
func (f syscallFlags) envSetters() []envSetter {
	return []envSetter{
		{"regress-syscall-read", "GREETER_REGRESS_SYSCALL_READ", func(v string) (err error) {
			*f.read, err = time.ParseDuration(v)
			return err
		}},
		{"regress-syscall-pct", "GREETER_REGRESS_SYSCALL_PCT", func(v string) (err error) {
			*f.pct, err = strconv.ParseFloat(v, 64)
			return err
		}},
	}
}

func (f syscallFlags) validate() error {
	switch {
	case *f.read < 0 || *f.read > maxSyscallRead:
		return fmt.Errorf("regress-syscall-read must be between 0 and %s, got %s", maxSyscallRead, *f.read)
	case math.IsNaN(*f.pct) || *f.pct < 0 || *f.pct > 100:
		return fmt.Errorf("regress-syscall-pct must be between 0 and 100, got %g", *f.pct)
	}
	return nil
}

// syscallKnob is the regression's part for this file: set up once before
// serving; only the accumulator changes afterwards.
type syscallKnob struct {
	read time.Duration
	pct  float64 // share of calls that read, in %; 100 = every call
	// micro accumulates pct/100 per call, in microUnits: a call reads when it crosses a unit.
	micro atomic.Uint64
}

func (k *syscallKnob) active() bool { return k.read > 0 && k.pct > 0 }

func (k *syscallKnob) String() string {
	return fmt.Sprintf("syscall_read=%s syscall_pct=%g", k.read, k.pct)
}

// thisCall says whether this call does the extra read: pct % of the calls,
// spread evenly like -regress-sleep-pct.
func (k *syscallKnob) thisCall() bool {
	if !k.active() {
		return false
	}
	owedMicro := uint64(k.pct*(microUnit/100) + 0.5)
	after := k.micro.Add(owedMicro)
	return wholeUnitsCrossed(after-owedMicro, after) > 0
}

// blockingRead is the blocking-syscall regression: a timer writes one byte
// into a new pipe after syscallRead while this goroutine's thread waits for it
// in read(). The pipe is the call's own, so no call reads another's byte and
// returns early when calls overlap; both ends are raw blocking descriptors
// (not an os.File the runtime would poll), so read() itself waits. The pipe is
// closed only once the timer has written or will never write, so a late write
// cannot reach a descriptor number that was reused meanwhile.
//
//go:noinline
func blockingRead(reg *regression) error {
	if reg == nil || !reg.syscalls.thisCall() {
		return nil
	}
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return fmt.Errorf("regress-syscall-read: pipe: %w", err)
	}
	fed := make(chan struct{})
	timer := time.AfterFunc(reg.syscalls.read, func() {
		defer close(fed)
		for {
			if _, err := syscall.Write(fds[1], []byte{1}); err != syscall.EINTR {
				return
			}
		}
	})
	err := readOne(fds[0])
	if !timer.Stop() {
		<-fed
	}
	syscall.Close(fds[0])
	syscall.Close(fds[1])
	return err
}

func readOne(fd int) error {
	var one [1]byte
	for {
		_, err := syscall.Read(fd, one[:])
		if err != syscall.EINTR {
			return err
		}
	}
}
