"""Which fabric tools a node has, and which of the optional ones its apt sources offer. Stdlib only.

A node whose packages sparkctl does not manage (`verify`) must already have every tool: each package
is looked for by a command it installs, since such a node may have no dpkg database (the lab's nodes
share the host's read-only /usr). A node sparkctl installs on (`install`) gets the base tools and
those optional RDMA packages its distribution offers; asking apt first, in one `apt-cache policy`
call, keeps an install from failing on a package a release does not carry.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence

from .networkd import Runner as Run

Which = Callable[[str], str | None]


class PackagesError(Exception):
    """A tool is missing or apt cannot be asked; the message says what to do."""


def missing(packages: Sequence[str], commands: Mapping[str, str], which: Which = shutil.which) -> list[str]:
    """The packages whose command (from `commands`, else the package's own name) is not on the PATH."""
    return [p for p in packages if which(commands.get(p, p)) is None]


def candidates(policy: str) -> dict[str, bool]:
    """Package -> whether apt has a candidate to install, from `apt-cache policy P...` output (a package apt
    does not know is absent from it)."""
    offered: dict[str, bool] = {}
    package = None
    for line in policy.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            package = line.rstrip()[:-1]
            offered[package] = False
        elif package and line.strip().startswith("Candidate:"):
            offered[package] = line.split(":", 1)[1].strip() not in ("", "(none)")
    return offered


def to_install(base: Sequence[str], optional: Sequence[str], run: Run, apt_get: str = "/usr/bin/apt-get",
               node: str = "this node") -> tuple[list[str], list[str]]:
    """(what apt is to install: the base and the optional packages apt offers, the optional ones it does not)."""
    if not os.path.exists(apt_get):
        raise PackagesError(
            f"{node} has no apt-get: sparkctl installs packages on DGX OS / Ubuntu / Debian only. Install "
            f"{', '.join([*base, *optional])} yourself and set sparkctl_packages_mode: verify.")
    if not optional:
        return list(base), []
    rc, out, err = run(["apt-cache", "policy", *optional])
    if rc != 0:
        raise PackagesError(f"apt-cache policy failed on {node}: {err.strip() or out.strip()}")
    offered = candidates(out)
    return [*base, *(p for p in optional if offered.get(p))], [p for p in optional if not offered.get(p)]
