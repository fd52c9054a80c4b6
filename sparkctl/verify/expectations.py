"""What a healthy link must show, read from the inventory (the lab declares its own figures).

Defaults are real Spark figures (spark-facts): each half of a healthy 200G link reports 200000 Mb/s
in ethtool; one half carries ~90-100 Gb/s and a cable ~160-198 Gb/s with several iperf3 streams.
A lab of veth pairs reports 10000 Mb/s and moves far less, so it sets its own figures; the checks
are the same code either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkctl import hardware, validate
from sparkctl.errors import InputError
from sparkctl.inventory import Inventory
from sparkctl.settings import NUMBERS

DEFAULT_MIN_HALF_GBPS = 80.0
DEFAULT_MIN_CABLE_GBPS = 160.0
DEFAULT_MAX_LOSS_PERCENT = 0.0
NCCL_MIN_BUSBW_GBS = {2: 21.875}
NCCL_MIN_BUSBW_RING_GBS = 10.0
RDMA_MIN_GBPS_PER_DEVICE = 80.0


@dataclass(frozen=True)
class Expectations:
    link_speed_mbps: int
    min_half_gbps: float
    min_cable_gbps: float
    max_loss_percent: float


def _number(inventory: Inventory, key: str, default: float) -> float:
    """The figure of `key`, checked by the same rule and range as `sparkctl plan` checks it (settings.NUMBERS)."""
    host = next(iter(inventory))
    low, high, example = NUMBERS[key]
    try:
        return validate.number(host.values.get(key, default), low, high, example)
    except validate.Invalid as exc:
        raise InputError(exc.message, file=host.location(key) or inventory.hosts_file, key=key,
                         fix=f"{exc.fix}, or remove it for the default") from None


def read_expectations(inventory: Inventory) -> Expectations:
    return Expectations(
        link_speed_mbps=int(_number(inventory, "sparkctl_link_speed_mbps", hardware.LINK_SPEED_MBPS)),
        min_half_gbps=_number(inventory, "sparkctl_min_half_gbps", DEFAULT_MIN_HALF_GBPS),
        min_cable_gbps=_number(inventory, "sparkctl_min_cable_gbps", DEFAULT_MIN_CABLE_GBPS),
        max_loss_percent=_number(inventory, "sparkctl_max_loss_percent", DEFAULT_MAX_LOSS_PERCENT),
    )
