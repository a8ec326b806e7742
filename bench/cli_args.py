"""argparse for the suite's commands, with the suite's error contract: a bad option or value is one line naming it
and what is valid, exit code 2, no usage block (argparse prints the usage and the error on separate lines)."""

from __future__ import annotations

import argparse
import sys

from .errors import EXIT_USAGE


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own message already names the option and the valid choices
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def one_line_parser(prog: str, description: str) -> OneLineParser:
    return OneLineParser(prog=prog, description=description, allow_abbrev=False)
