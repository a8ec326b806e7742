"""`python -m bench.smoke [PAPER ...]` (`make smoke`): the command lives in bench/sweep/smoke.py, the miniature a
smoke run trains in bench/run_miniature.py; this name stays for the Makefile and users."""

import sys

from bench.sweep.smoke import main

if __name__ == "__main__":
    sys.exit(main())
