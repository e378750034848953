"""`python -m perfgate ARGS` == `perfgate ARGS`."""

from perfgate.cli import main_exit

main_exit()
