"""User-facing errors: one line naming what is wrong and what is valid, exit code 2, no traceback."""

from __future__ import annotations

import os
import sys

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake in the input (config, data file, environment), not a bug: reported as one line."""


def report_and_exit(err: BaseException) -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise err
    print(f"error: {err}", file=sys.stderr)
    sys.exit(EXIT_USAGE)
