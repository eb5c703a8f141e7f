"""Currencies: a dated exchange-rate table (units per US dollar, the page that publishes the reference rate,
and whether the figure was read there), conversion, and amounts formatted for a reader."""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import ParamsError

RATE_COLUMNS = ("currency", "units_per_usd", "date", "source", "status")
SYMBOLS = {"USD": "$", "CNY": "¥", "EUR": "€"}


@dataclass(frozen=True)
class Rate:
    currency: str
    units_per_usd: float
    date: str
    source: str
    status: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def words(self) -> str:
        """The line printed under every money table."""
        if self.currency == "USD":
            return "Amounts in USD (no conversion)."
        return (f"Exchange rate: 1 USD = {self.units_per_usd:g} {self.currency}, dated {self.date}; "
                f"source {self.source} ({self.status}).")


def rates_table_path() -> Path:
    return paths.data_dir() / "exchange_rates.csv"


def load_rates(path: str | Path | None = None) -> dict[str, Rate]:
    """Every row dated and sourced, its rate positive: a conversion nobody can trace is refused."""
    path = Path(path) if path else rates_table_path()
    if not path.is_file():
        raise ParamsError(f"exchange-rate table {path} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(RATE_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ParamsError(f"exchange-rate table {path} lacks columns {sorted(missing)}; it needs {list(RATE_COLUMNS)}")
        rates = {}
        for i, raw in enumerate(reader, start=2):
            rate = parse_rate(raw["currency"], raw["units_per_usd"], raw["date"], raw["source"], raw["status"],
                              where=f"{path} line {i}")
            rates[rate.currency] = rate
    return rates


def parse_rate(currency: str, value: str | float, date: str, source: str, status: str, where: str) -> Rate:
    try:
        units = float(value)
    except (TypeError, ValueError):
        raise ParamsError(f"{where}: rate {value!r} is not a number") from None
    if not (math.isfinite(units) and units > 0) or not str(date).strip() or not str(source).strip():
        raise ParamsError(f"{where}: a rate needs a positive number, a date and a source (got {value!r}, "
                          f"{date!r}, {source!r})")
    try:
        dt.date.fromisoformat(str(date).strip())
    except ValueError:
        raise ParamsError(f"{where}: date {date!r} is not a calendar date written YYYY-MM-DD (e.g. 2026-12-07): a "
                          "rate is dated by the day it was read") from None
    return Rate(currency.strip().upper(), units, str(date).strip(), source.strip(), status.strip())


def user_rate(spec: str) -> Rate:
    """`CNY=7.18@2026-12-07`: a rate the user read, dated by the user."""
    try:
        cur, rest = spec.split("=", 1)
        value, date = rest.split("@", 1)
    except ValueError:
        raise ParamsError(f"rate {spec!r}: write it as CURRENCY=UNITS_PER_USD@DATE (the date YYYY-MM-DD), e.g. "
                          "CNY=7.18@2026-12-07") from None
    return parse_rate(cur, value, date, "given by the user", "user override", where=f"rate {spec!r}")


def rates_with(table: str | Path | None = None, override: str = "") -> dict[str, Rate]:
    """The table's rates, the user's override (for its own currency) replacing that row."""
    rates = load_rates(table)
    if override:
        rate = user_rate(override)
        rates[rate.currency] = rate
    return rates


def pick_rate(currency: str, table: str | Path | None = None, override: str = "") -> Rate:
    currency = currency.strip().upper()
    rates = rates_with(table, override)
    if currency not in rates:
        raise ParamsError(f"no exchange rate for {currency!r} in {table or rates_table_path()}; add a row or pass "
                          f"--rate {currency}=UNITS_PER_USD@DATE (have: {sorted(rates)})")
    return rates[currency]


def to_usd(amount: float, currency: str, rate: Rate, others: dict[str, Rate] | None = None) -> float:
    """An amount given in `currency` in USD: at `rate` (the prospectus's) or at the row of `others` (the rate
    table, with any override) for its currency."""
    return amount / (rate_for(currency, rate, others).units_per_usd if currency.strip().upper() != "USD" else 1.0)


def rate_for(currency: str, rate: Rate, others: dict[str, Rate] | None = None) -> Rate:
    """The rate an amount in `currency` (not USD) converts at."""
    currency = currency.strip().upper()
    if currency == rate.currency:
        return rate
    if currency in (others or {}):
        return others[currency]
    raise ParamsError(f"an amount in {currency} cannot be converted: there is no {currency} row in the rate table; "
                      f"give it in USD or {rate.currency}, or add a dated {currency} row")


def sig(amount: float, figures: int = 2) -> str:
    """`amount` to `figures` significant figures, in decimal notation (0.0000023, not 2.3e-06)."""
    if amount == 0 or not math.isfinite(amount):
        return f"{amount:g}"
    decimals = max(0, figures - 1 - math.floor(math.log10(abs(amount))))
    return f"{amount:,.{decimals}f}"


def fmt(amount: float, currency: str, digits: int = 0) -> str:
    """`¥1,234,567` / `$0.0065`: amounts under 1 keep 2 significant figures, larger ones `digits` decimals."""
    sym = SYMBOLS.get(currency, currency + " ")
    if amount != 0 and abs(amount) < 1 and digits == 0:
        return f"{sym}{sig(amount)}"
    return f"{sym}{amount:,.{digits}f}"


def fmt_per_request(amount: float, currency: str) -> str:
    """Per-request amounts in CNY also in fen (1/100 yuan), which reads better for fractions of a yuan."""
    text = f"{SYMBOLS.get(currency, currency + ' ')}{sig(amount)}"
    if currency == "CNY" and amount < 0.1:
        text += f" ({sig(amount * 100)} fen)"
    return text
