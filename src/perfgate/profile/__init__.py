"""pprof profiles, apart from how they are fetched (capture/pprof.py, capture/layers.py).

model.py      Profile (one sample type's costs per function, its folded stacks) and FunctionCost
parse.py      gzipped or raw profile.proto -> Profile, bounded in size, like `go tool pprof`
aggregate.py  samples -> flat and cum per function, folded stacks (pprof's graph building)
names.py      function names as pprof prints them; `gates:` patterns over them
units.py      pprof's units: scaling and labels
render.py     `profile top`, the `go tool pprof` diff command
diff.py       `profile diff` of two profiles, like pprof's -diff_base -normalize

A CPU profile and a heap, mutex or block profile are the same Profile: parse_profile(sample_type=...)
picks the sample type. Nothing here does I/O beyond reading a profile file, and nothing imports requests,
numpy or scipy. This file imports nothing, so importing one module loads only what that one needs.
"""
