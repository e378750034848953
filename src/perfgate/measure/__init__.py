"""The measure stage: warm-up, then N repetitions, each a load window with its CPU and kernel captures.

schedules.py   `measure` (one side) and `measure_interleaved` (both builds: restart, alternate, duet)
session.py     one side's record, grown and saved after every repetition (a failure midway keeps what was measured)
repetition.py  one repetition: the load window and its captures
cpu.py         the service's CPU clocks and the CPU profile fetched inside the window
kernel.py      one run-queue collector for the run, cut into the load windows by marks

Import the module you need (perfgate.measure.schedules, ...): this file imports nothing, so that a module
the stage uses (capacity probes, say) may import perfgate.measure.session without a cycle.
"""
