"""User-facing errors: one line naming what is wrong and what is valid, exit code 2, no traceback."""

from __future__ import annotations

import os
import sys

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake in the input (config, data file, environment), not a bug: reported as one line."""


class DiskFull(UserError):
    """No space left while writing: nothing finished is lost (atomic writes, checkpoints marked complete last)."""

    EXIT = 1

    @classmethod
    def from_os_error(cls, err: OSError) -> "DiskFull":
        where = f" writing {err.filename}" if err.filename else ""
        return cls(f"no space left on the device{where}; free space and run the same command again (it resumes "
                   "from the last complete checkpoint, finished runs are kept)")


def is_disk_full(err: BaseException) -> bool:
    import errno

    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def report_and_exit(err: BaseException) -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise err
    print(f"error: {err}", file=sys.stderr)
    sys.exit(getattr(err, "EXIT", EXIT_USAGE))
