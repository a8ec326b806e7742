"""`python -m bench.reproduce [PAPER ...]` (`make reproduce`, `make reproduce-<paper>`): the command lives in
bench/sweep/reproduce.py; this name stays for the Makefile and users."""

import sys

from bench.sweep.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
