"""How an accelerator-hour is paid for: on-demand (data/prices.csv), reserved 1 y / 3 y and spot (a fraction
of on-demand; spot with an interruption overhead) and owned hardware (purchase amortized, power, hosting),
from data/price_modes.csv. A mode's cost splits into what is paid for every card held all day (`held`:
reserved hours, owned capital and hosting) and what is paid per card-hour run (`running`: on-demand, spot,
owned power), so an autoscaled fleet saves only the second."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import paths
from ..cost import HOURS_PER_YEAR, PriceRow, load_prices
from ..errors import ParamsError

MODES = ("on-demand", "reserved-1y", "reserved-3y", "spot", "owned")
MODE_COLUMNS = ("price_id", "mode", "on_demand_fraction", "interruption_overhead", "purchase_usd",
                "amortization_years", "power_kw", "pue", "tariff_usd_per_kwh", "hosting_usd_per_year",
                "source", "as_of", "confidence")


@dataclass(frozen=True)
class HourlyPrice:
    """One accelerator-hour of a price row in one mode, in USD."""
    price_id: str
    accelerator: str
    mode: str
    held_usd_per_hour: float  # paid for every card the fleet holds, every hour
    running_usd_per_hour: float  # paid for every card-hour the fleet runs
    how: str  # the arithmetic, in words, for the reader
    source: str
    as_of: str
    confidence: str
    page: str
    capital_usd_per_hour: float = 0.0  # owned: the purchase amortized, part of `held`; kept by hardware once bought
    amortization_years: float = 0.0  # owned: after these years a card is bought again, at that year's price

    @property
    def usd_per_hour(self) -> float:
        return self.held_usd_per_hour + self.running_usd_per_hour

    def scaled(self, factor: float, why: str) -> HourlyPrice:
        return HourlyPrice(**{**asdict(self), "held_usd_per_hour": self.held_usd_per_hour * factor,
                              "running_usd_per_hour": self.running_usd_per_hour * factor,
                              "capital_usd_per_hour": self.capital_usd_per_hour * factor,
                              "how": f"{self.how}; × {factor:g} ({why})"})

    def repriced(self, factor: float, why: str) -> HourlyPrice:
        """Running costs (and held costs other than owned capital) × `factor`; the capital of cards already
        bought is not repriced (the caller prices new purchases at their year's price)."""
        other_held = self.held_usd_per_hour - self.capital_usd_per_hour
        return HourlyPrice(**{**asdict(self), "held_usd_per_hour": self.capital_usd_per_hour + other_held * factor,
                              "running_usd_per_hour": self.running_usd_per_hour * factor,
                              "how": f"{self.how}; running costs × {factor:g} ({why})"
                                     + ("; capital as bought" if self.capital_usd_per_hour else "")})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usd_per_hour": self.usd_per_hour}


def modes_path() -> Path:
    return paths.data_dir() / "price_modes.csv"


def load_modes(path: str | Path | None = None) -> list[dict[str, str]]:
    path = Path(path) if path else modes_path()
    if not path.is_file():
        raise ParamsError(f"price-mode table {path} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(MODE_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ParamsError(f"price-mode table {path} lacks columns {sorted(missing)}")
        rows = [{k: (v or "").strip() for k, v in raw.items()} for raw in reader]
    for i, r in enumerate(rows, start=2):
        if r["mode"] not in MODES[1:]:
            raise ParamsError(f"{path} line {i}: mode {r['mode']!r} is not one of {list(MODES[1:])}")
        if not r["source"] or not r["as_of"]:
            raise ParamsError(f"{path} line {i}: every mode row needs a source and a date")
    return rows


def number(row: dict[str, str], key: str, where: str) -> float:
    try:
        value = float(row[key])
    except ValueError:
        raise ParamsError(f"{where}: {key} {row[key]!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ParamsError(f"{where}: {key} must be a finite, non-negative number")
    return value


def hourly_price(row: PriceRow, mode: str, modes: list[dict[str, str]], page: str = "") -> HourlyPrice:
    """`row` (an on-demand price row) paid for in `mode`. A mode row for this price id wins over the `*` row."""
    if mode not in MODES:
        raise ParamsError(f"price mode {mode!r} is not one of {list(MODES)}")
    base = {"price_id": row.id, "accelerator": row.accelerator, "mode": mode, "page": page}
    if mode == "on-demand":
        return HourlyPrice(**base, held_usd_per_hour=0.0, running_usd_per_hour=row.usd_per_hour,
                           how=f"on-demand {row.usd_per_hour:g} USD/h", source=row.source, as_of=row.as_of,
                           confidence=row.confidence)
    found = [m for m in modes if m["mode"] == mode and m["price_id"] == row.id] or \
        [m for m in modes if m["mode"] == mode and m["price_id"] == "*"]
    if not found:
        raise ParamsError(f"no {mode} row for price {row.id!r} in the price-mode table; add one (columns "
                          f"{', '.join(MODE_COLUMNS)}) or choose another mode")
    m = found[0]
    where = f"price_modes {m['price_id']}/{mode}"
    words = {"source": f"{m['source']}; on-demand base: {row.source}" if mode != "owned" else m["source"],
             "as_of": m["as_of"], "confidence": m["confidence"]}
    if mode in ("reserved-1y", "reserved-3y"):
        frac = number(m, "on_demand_fraction", where)
        return HourlyPrice(**base, held_usd_per_hour=row.usd_per_hour * frac, running_usd_per_hour=0.0,
                           how=f"{frac:g} × on-demand {row.usd_per_hour:g} USD/h, paid for every hour held", **words)
    if mode == "spot":
        frac, over = number(m, "on_demand_fraction", where), number(m, "interruption_overhead", where)
        return HourlyPrice(**base, held_usd_per_hour=0.0, running_usd_per_hour=row.usd_per_hour * frac * (1 + over),
                           how=f"{frac:g} × on-demand {row.usd_per_hour:g} USD/h × (1 + {over:g} interruption "
                               "overhead)", **words)
    purchase, years = number(m, "purchase_usd", where), number(m, "amortization_years", where)
    kw, pue, tariff = number(m, "power_kw", where), number(m, "pue", where), number(m, "tariff_usd_per_kwh", where)
    hosting = number(m, "hosting_usd_per_year", where)
    if years <= 0:
        raise ParamsError(f"{where}: amortization_years must be positive")
    capital = purchase / years / HOURS_PER_YEAR
    held = capital + hosting / HOURS_PER_YEAR
    running = kw * pue * tariff
    return HourlyPrice(**base, held_usd_per_hour=held, running_usd_per_hour=running, capital_usd_per_hour=capital,
                       amortization_years=years,
                       how=f"{purchase:,.0f} USD / {years:g} y + hosting {hosting:,.0f} USD/y (held: {held:.4f} USD/h); "
                           f"power {kw:g} kW × PUE {pue:g} × {tariff:g} USD/kWh (running: {running:.4f} USD/h)", **words)


def table_page(path: str | Path | None, price_id: str) -> str:
    """The `page` column of data/prices.csv (optional: load_prices ignores it) for one row."""
    path = Path(path) if path else paths.data_dir() / "prices.csv"
    with open(path, newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            if raw.get("id") == price_id:
                return (raw.get("page") or "").strip()
    return ""


def price_rows(path: str | Path | None = None) -> dict[str, PriceRow]:
    return {r.id: r for r in load_prices(path)}
