"""Which code produced a result: the package version plus, in a git checkout, the commit.

Every run and step records this so a verifier can tell which calculation code produced a number.
Looked up once per process (``git`` is a subprocess) and never at import time.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # SHA-1 or SHA-256 object names
_GIT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class CodeVersion:
    """``package_version`` from ``mrv.__version__``; ``git_commit``/``dirty`` are None outside a checkout."""

    package_version: str
    git_commit: str | None
    dirty: bool | None

    @property
    def label(self) -> str:
        """One string for a ``code_version`` column, PEP 440 local-version style:
        ``0.1.0``, ``0.1.0+g1a2b3c4d5e6f`` or ``0.1.0+g1a2b3c4d5e6f.dirty``."""
        if self.git_commit is None:
            return self.package_version
        label = f"{self.package_version}+g{self.git_commit[:12]}"
        return f"{label}.dirty" if self.dirty else label

    def to_dict(self) -> dict[str, str | bool | None]:
        return asdict(self)


@functools.cache
def code_version() -> CodeVersion:
    """The running code's version (cached for the life of the process)."""
    import mrv  # late import: keeps this module free of import-time work

    package_dir = Path(mrv.__file__).resolve().parent
    commit, dirty = git_state(package_dir)
    return CodeVersion(package_version=mrv.__version__, git_commit=commit, dirty=dirty)


def git_state(package_dir: Path) -> tuple[str | None, bool | None]:
    """``(HEAD commit, dirty)`` if ``package_dir`` is tracked in a git work tree, else ``(None, None)``.

    Never raises: git missing, not a repository, no commits yet or "dubious ownership" all mean
    "unknown". A package installed into a virtualenv that happens to live inside some *other* git
    checkout is not tracked there, so it does not borrow that checkout's commit.
    """
    init = package_dir / "__init__.py"
    tracked = _git(package_dir, "ls-files", "--error-unmatch", "--", init.name)
    if tracked is None:
        return None, None
    head = _git(package_dir, "rev-parse", "--verify", "HEAD")
    if head is None or not _SHA.match(head):
        return None, None
    # Tracked files only: untracked scratch files do not change what the committed code computes.
    status = _git(package_dir, "status", "--porcelain", "--untracked-files=no")
    return head, (None if status is None else bool(status))


def _git(cwd: Path, *args: str) -> str | None:
    # GIT_OPTIONAL_LOCKS=0: `git status` must not refresh (write) the index of the user's checkout.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip()
