"""Building the service under test from source: the base ref in a git worktree, and the working tree.

This package imports the Python standard library only (tests/unit guard it): the GitHub Action runs
it on the runner host, where the toolchain is but perfgate's dependencies are not, as
`PYTHONPATH=$GITHUB_ACTION_PATH/src python3 -m perfgate.build --plan PLAN --against SHA --out DIR`.

  plan.py      BuildPlan: the resolved `service.build` (argv with {output}, env, timeout) as JSON
  git.py       the repository, a ref resolved to a commit, a worktree that is always removed
  compile.py   one build: argv, timeout, scrubbed environment, output to a log, the tail on failure
  manifest.py  builds.json: which sides were built, from which commit, where the binaries are
  sources.py   build_sources: the base (in a worktree of REF) and the head (the working tree)
  elf.py       interpreter(): is the executable static, or which loader does it need

Import the submodules themselves; this file imports nothing, so `perfgate.config` can read plan.py cheaply.
"""
