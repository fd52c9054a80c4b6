"""The workloads serving reviews compare layouts on: input and output lengths of each request."""

from __future__ import annotations

from dataclasses import dataclass

from sparkctl.errors import InputError


@dataclass(frozen=True)
class Workload:
    name: str
    input_len: int
    output_len: int


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("equal", 1024, 1024),
    Workload("prefill-heavy", 8192, 1024),
    Workload("decode-heavy", 1024, 8192),
)}


def pick(name: str, input_len: int | None = None, output_len: int | None = None) -> list[Workload]:
    """The named workload (or every one for `all`), with lengths overridden where given."""
    if name != "all" and name not in WORKLOADS:
        raise InputError(f"{name!r} is not a workload", key="--workload",
                         fix=f"use one of {', '.join(WORKLOADS)} or all")
    for value, option in ((input_len, "--input-len"), (output_len, "--output-len")):
        if value is not None and not 1 <= value <= 1_000_000:
            raise InputError(f"{value} is out of range", key=option, fix="use 1 to 1000000 tokens")
    chosen = list(WORKLOADS.values()) if name == "all" else [WORKLOADS[name]]
    return [Workload(w.name, input_len or w.input_len, output_len or w.output_len) for w in chosen]
