"""The day's load and the fleet that serves it: 24 hourly multipliers of the day's average rate (a documented
default shape, or the user's CSV), and two fleet policies priced hour by hour: sized for the peak all day,
and autoscaled with a lead time and a minimum. The fleet cost per 1M (what the fleet costs over what it
serves) is the headline; the unit cost at the target utilization is its floor."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ParamsError
from .price_modes import HourlyPrice

# An assumed diurnal shape of a consumer service in one time zone (not measured): trough at 04:00, a
# working-day plateau, the evening peak at 20:00. Normalized to mean 1 by `profile()`; peak/average 1.67.
DEFAULT_SHAPE = (0.55, 0.42, 0.33, 0.28, 0.26, 0.30, 0.45, 0.70, 0.95, 1.10, 1.20, 1.25,
                 1.30, 1.25, 1.20, 1.20, 1.25, 1.35, 1.50, 1.70, 1.80, 1.70, 1.30, 0.85)
POLICIES = ("peak-sized", "autoscaled")


def normalized(values: list[float] | tuple[float, ...], where: str) -> list[float]:
    if len(values) != 24 or any(not math.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
        raise ParamsError(f"{where}: a daily profile is 24 non-negative hourly figures, not all zero "
                          f"(got {len(values)})")
    mean = sum(values) / 24
    return [v / mean for v in values]


def profile(source: str = "default") -> list[float]:
    """24 multipliers of the day's average rate (mean 1). `source`: 'default', 'flat', or a CSV of the day's
    traffic by hour (a header, then 24 rows; the last column is read: requests, QPS or any unit)."""
    if source in ("", "default"):
        return normalized(DEFAULT_SHAPE, "the default profile")
    if source == "flat":
        return [1.0] * 24
    path = Path(source)
    if not path.is_file():
        raise ParamsError(f"profile {source!r}: not 'default', 'flat' or an existing CSV of 24 hourly figures")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r]
    try:
        values = [float(r[-1]) for r in rows[1:]]
    except ValueError:
        raise ParamsError(f"profile {path}: after the header, every row's last column must be a number") from None
    return normalized(values, f"profile {path}")


@dataclass(frozen=True)
class FleetPolicy:
    name: str  # peak-sized | autoscaled
    target_utilization: float
    redundancy: int  # spare instances beyond what the hour needs (N+redundancy)
    min_instances: int = 1
    lead_time_h: float = 0.0  # autoscaled: an instance serving hour h is started (and paid) this much earlier

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ParamsError(f"fleet policy {self.name!r} is not one of {list(POLICIES)}")
        if not 0 < self.target_utilization <= 1 or self.redundancy < 0 or self.min_instances < 0 \
                or self.lead_time_h < 0:
            raise ParamsError("target_utilization must lie in (0, 1]; redundancy, min_instances and lead_time_h "
                              "must not be negative")


def instances_by_hour(rates: list[float], capacity: float, policy: FleetPolicy) -> list[int]:
    """Instances running in each hour for `rates` (inferences/s per hour) at `capacity` per instance.
    Peak-sized: the peak hour's need all day. Autoscaled: each hour's need, started ceil(lead) hours ahead
    (the hourly grid rounds a lead time up), never under the minimum. Both add the spares."""
    need = [max(policy.min_instances, math.ceil(r / (capacity * policy.target_utilization) - 1e-9)) for r in rates]
    if policy.name == "peak-sized":
        return [max(need) + policy.redundancy] * 24
    ahead = math.ceil(policy.lead_time_h - 1e-9)
    return [max(need[(h + k) % 24] for k in range(ahead + 1)) + policy.redundancy for h in range(24)]


def day_cost(instances: list[int], price: HourlyPrice) -> float:
    """USD for one day: every card held pays the held rate all 24 hours; each running card-hour the running rate."""
    return max(instances) * 24 * price.held_usd_per_hour + sum(instances) * price.running_usd_per_hour


def unit_floor_per_1m(capacity: float, price: HourlyPrice, utilization: float) -> float:
    """USD per 1M inferences of one instance kept at `utilization` of `capacity`: the fleet cost's floor."""
    return price.usd_per_hour / (capacity * utilization * 3600) * 1e6


def price_fleet(daily_inferences: float, shape: list[float], capacity: float, price: HourlyPrice,
                policy: FleetPolicy) -> dict[str, Any]:
    """One fleet over one day: instances per hour, cost per day and per year, and the cost per 1M inferences it
    serves against its floor."""
    if capacity <= 0 or daily_inferences <= 0:
        raise ParamsError(f"capacity ({capacity}) and daily inferences ({daily_inferences}) must be positive")
    rates = [daily_inferences / 86400 * m for m in shape]
    n = instances_by_hour(rates, capacity, policy)
    usd_day = day_cost(n, price)
    return {"policy": policy.name, "instances_by_hour": n, "peak_instances": max(n),
            "instance_hours_per_day": sum(n), "usd_per_day": usd_day, "usd_per_year": usd_day * 365,
            "fleet_usd_per_1m": usd_day / daily_inferences * 1e6,
            "floor_usd_per_1m": unit_floor_per_1m(capacity, price, policy.target_utilization),
            "mean_utilization": daily_inferences / (sum(n) * 3600 * capacity)}
