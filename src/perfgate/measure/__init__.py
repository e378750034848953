"""The measure stage: warm-up, then N repetitions, each a load window with its CPU and kernel captures.

session.py     one side's record, grown and saved after every repetition (a failure midway keeps what was measured)
repetition.py  one repetition: the load window and its captures
schedules.py   one side, or both builds interleaved (restart, alternate, duet)
cpu.py         the service's CPU clocks and the CPU profile fetched inside the window
kernel.py      the run-queue collector around the window
"""

from perfgate.measure.schedules import measure, measure_interleaved
from perfgate.measure.session import utc_now

__all__ = ["measure", "measure_interleaved", "utc_now"]
