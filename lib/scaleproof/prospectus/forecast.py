"""The prospectus's figures, as one JSON-able dict: for every served model today's fleet under both policies,
before and after the optimization, in the prospectus currency; then per fiscal year and per case (low /
base / high) the instances, inference OPEX, OPEX as a share of revenue, gross margin with and without the
optimization and its contribution in percentage points. Every figure carries where it came from: the run file
and key, the price row and mode, and the exchange rate.

Revenue and hourly prices are given in a stated currency and converted like every amount, so the currency a
prospectus is shown in never changes what it says. Instances are counted per machine type (a price row and its
accelerators per instance), never added across types. A yearly price change reprices running costs and new
purchases; owned cards keep the price they were bought at until they are amortized and bought again."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ParamsError
from .load_profile import POLICIES, FleetPolicy, price_fleet, profile
from .money import Rate, pick_rate, rate_for, rates_with, to_usd
from .price_modes import HourlyPrice, hourly_price, load_modes, price_rows, table_page
from .served_runs import ServedRun, read_run, stated_run
from .spec import ProspectusSpec, ServedModel

PROSPECTUS_FORMAT = 1
CASES = ("low", "base", "high")  # traffic x the user's band, each engine at that end of its measured capacity range


def policies(spec: ProspectusSpec) -> dict[str, FleetPolicy]:
    return {name: FleetPolicy(name, spec.target_utilization, spec.redundancy, spec.min_instances,
                              spec.lead_time_h if name == "autoscaled" else 0.0) for name in POLICIES}


def model_price(m: ServedModel, run: ServedRun, spec: ProspectusSpec, rate: Rate,
                others: dict[str, Rate] | None = None) -> HourlyPrice:
    """The price of one instance-hour in USD: the row (the run's unless named) in the model's mode, or the
    user's hourly figure; times the accelerators of an instance."""
    rows = price_rows(spec.price_table or None)
    row_id = m.price_row or run.price_id
    table = spec.price_table or "data/prices.csv"
    if m.price_per_hour:
        usd = to_usd(m.price_per_hour, m.price_currency, rate, others)
        said = f" (row {row_id} of {table} said {rows[row_id].usd_per_hour:g} USD/h on-demand)" if row_id in rows else ""
        hp = HourlyPrice(price_id=row_id, accelerator=run.device, mode="user override", held_usd_per_hour=0.0,
                         running_usd_per_hour=usd, how=f"{m.price_per_hour:g} {m.price_currency.upper()}/h given in "
                         f"the params (= {usd:.6g} USD/h)", source=f"user override{said}", as_of="params",
                         confidence="user", page="")
    elif row_id not in rows:
        raise ParamsError(f"model {m.name!r}: price row {row_id!r} is not in the price table; choose one of {sorted(rows)}")
    else:
        hp = hourly_price(rows[row_id], m.price_mode, load_modes(spec.price_modes or None),
                          table_page(spec.price_table or None, row_id))
        hp = replace(hp, source=f"row {row_id} of {table}: {hp.source}")
    if run.accelerators_per_instance > 1:
        hp = hp.scaled(run.accelerators_per_instance, "accelerators per instance")
    return hp


def in_currency(fleet: dict[str, Any], rate: Rate, inferences_per_request: float) -> dict[str, Any]:
    k = rate.units_per_usd
    return {**fleet, "cost_per_day": fleet["usd_per_day"] * k, "cost_per_year": fleet["usd_per_year"] * k,
            "fleet_per_1m": fleet["fleet_usd_per_1m"] * k, "floor_per_1m": fleet["floor_usd_per_1m"] * k,
            "fleet_per_request": fleet["fleet_usd_per_1m"] * k * inferences_per_request / 1e6,
            "floor_per_request": fleet["floor_usd_per_1m"] * k * inferences_per_request / 1e6}


def run_folder(run: str, runs_dir: str, root: Path | None) -> str:
    """`run` as a folder; a bare run id (no folder of that name) is looked up under `runs_dir`."""
    here = root or Path.cwd()
    if (here / run).is_dir() or Path(run).is_absolute() or "/" in run:
        return run
    by_id = str(Path(runs_dir) / run)
    if (here / by_id).is_dir():
        return by_id
    raise ParamsError(f"run {run!r} is neither a folder nor a run id under {here / runs_dir}; give the run folder's "
                      "path or set runs_dir")


def served(m: ServedModel, spec: ProspectusSpec, root: Path | None) -> ServedRun:
    if m.run:
        return read_run(run_folder(m.run, spec.runs_dir, root), m.before, m.after, root, tuple(m.accept_flags))
    c = m.capacity
    return stated_run(m.name, c.before_qps, c.after_qps, c.accelerator, m.price_row or "stated",
                      c.before_memory_gb, c.after_memory_gb)


def today(m: ServedModel, run: ServedRun, price: HourlyPrice, spec: ProspectusSpec, rate: Rate) -> dict[str, Any]:
    shape = profile(m.profile)
    daily_inferences = m.daily_requests * m.inferences_per_request
    fleets = {pol: {side: in_currency(price_fleet(daily_inferences, shape, getattr(run, side).instance_qps, price,
                                                  policy), rate, m.inferences_per_request)
                    for side in ("before", "after")} for pol, policy in policies(spec).items()}
    head = fleets[spec.policy]
    return {"profile": {"source": m.profile, "multipliers": shape, "peak_to_average": max(shape)},
            "daily_inferences": daily_inferences, "fleets": fleets,
            "annual_savings": head["before"]["cost_per_year"] - head["after"]["cost_per_year"],
            "traffic_multiple_same_budget": head["before"]["fleet_per_1m"] / head["after"]["fleet_per_1m"],
            "capacity_multiple": run.after.instance_qps / run.before.instance_qps}


def instance_type(run: ServedRun, price: HourlyPrice) -> str:
    """The machine an instance is: its price row and what it holds. Instances are counted per type."""
    n = run.accelerators_per_instance
    return f"{price.price_id} ({n} x {price.accelerator})" if n > 1 else f"{price.price_id} ({price.accelerator})"


def owned_capital_per_day(history: list[int], price: HourlyPrice, price_x: list[float]) -> float:
    """USD a day of owned capital in the last year of `history` (peak instances per year, first year first):
    each year's new cards at that year's price (`price_x`), a card bought again when amortized, at the price of
    that year; cards once bought are paid for even if the fleet later needs fewer."""
    t, life = len(history) - 1, max(1, round(price.amortization_years or 1))
    owned, total = 0, 0.0
    for s, n in enumerate(history):
        new = max(0, n - owned)
        owned += new
        total += new * price_x[s + (t - s) // life * life]  # bought in s, bought again every `life` years
    return 24 * price.capital_usd_per_hour * total


def year_row(spec: ProspectusSpec, models: list[tuple[ServedModel, ServedRun, HourlyPrice]], rate: Rate, t: int,
             case: str, revenue_usd: float = 0.0) -> dict[str, Any]:
    """One fiscal year of one case: every model's fleet before and after under the headline policy; instances
    summed per machine type, money summed."""
    band = {"low": spec.bands.low, "base": 1.0, "high": spec.bands.high}[case]
    traffic = [(1 + spec.traffic_growth) ** s * band for s in range(t + 1)]
    compute = [(1 + spec.compute_growth) ** s for s in range(t + 1)]
    price_x = [(1 + spec.price_change) ** s for s in range(t + 1)]
    traffic_x, compute_x = traffic[t], compute[t]
    policy = policies(spec)[spec.policy]
    per_model, requests, instances = [], 0.0, {}
    for m, run, price in models:
        daily = m.daily_requests * traffic_x
        requests += daily * 365
        p = price.repriced(price_x[t], f"price change {spec.price_change:+g}/year over {t} years") if t else price
        ipr = m.inferences_per_request * compute_x
        kind = instances.setdefault(instance_type(run, price), {"before": 0, "after": 0})
        sides = {}
        for side in ("before", "after"):
            cap = getattr(run, side).capacity(case)
            f = price_fleet(daily * ipr, profile(m.profile), cap, p, policy)
            usd_day = f["usd_per_day"]
            if p.capital_usd_per_hour:  # owned: capital by the year each card was bought, not this year's price
                history = [price_fleet(m.daily_requests * traffic[s] * m.inferences_per_request * compute[s],
                                       profile(m.profile), cap, p, policy)["peak_instances"] for s in range(t + 1)]
                usd_day += owned_capital_per_day(history, p, price_x) - 24 * p.capital_usd_per_hour * f["peak_instances"]
            k = rate.units_per_usd
            kind[side] += f["peak_instances"]
            sides[side] = {"instances": f["peak_instances"], "instance_hours_per_day": f["instance_hours_per_day"],
                           "opex": usd_day * 365 * k, "fleet_per_1m": usd_day / (daily * ipr) * 1e6 * k,
                           "fleet_per_request": usd_day / daily * k, "capacity": cap}
        per_model.append({"model": m.name, "instance_type": instance_type(run, price), "daily_requests": daily,
                          "inferences_per_request": ipr, **sides})
    opex_before = sum(x["before"]["opex"] for x in per_model)
    opex_after = sum(x["after"]["opex"] for x in per_model)
    revenue = (revenue_usd * requests if spec.revenue_per_request else revenue_usd * traffic_x) * rate.units_per_usd
    other = spec.other_cost_share * revenue
    gm_before = (revenue - other - opex_before) / revenue
    gm_after = (revenue - other - opex_after) / revenue
    return {"fiscal_year": spec.fiscal_year + t, "case": case, "traffic_multiple": traffic_x,
            "compute_multiple": compute_x, "price_multiple": price_x[t], "requests": requests,
            "instances": instances,
            "opex_before": opex_before, "opex_after": opex_after, "savings": opex_before - opex_after,
            "revenue": revenue, "other_cost_of_revenue": other,
            "opex_share_before": opex_before / revenue, "opex_share_after": opex_after / revenue,
            "gross_margin_before": gm_before, "gross_margin_after": gm_after,
            "margin_contribution_pp": (gm_after - gm_before) * 100, "models": per_model}


def resolved(spec: ProspectusSpec, root: Path | None) -> ProspectusSpec:
    """Tables and profile CSVs named relative to `root` (where the params were written for), for reading."""
    if root is None:
        return spec
    def at(p: str) -> str:
        return str(root / p) if p and p not in ("default", "flat") and not Path(p).is_absolute() else p
    return spec.model_copy(update={
        "rate_table": at(spec.rate_table), "price_table": at(spec.price_table), "price_modes": at(spec.price_modes),
        "models": [m.model_copy(update={"profile": at(m.profile)}) for m in spec.models]})


def build(spec: ProspectusSpec, params_file: str = "", root: str | Path | None = None) -> dict[str, Any]:
    """Every figure of the prospectus; relative paths in `spec` are read from `root` (default: the working folder)
    and named as written."""
    root = Path(root) if root else None
    shown, spec = spec, resolved(spec, root)
    rate = pick_rate(spec.currency, spec.rate_table or None, spec.rate)
    others = rates_with(spec.rate_table or None, spec.rate)
    given = [spec.revenue_currency] + [m.price_currency for m in spec.models if m.price_per_hour]
    converted = {r.currency: r for r in (rate_for(c, rate, others) for c in given if c.strip().upper() != "USD")
                 if r.currency != rate.currency}  # amounts given in another currency than the prospectus's
    revenue_usd = to_usd(spec.revenue_per_request or spec.revenue_per_year, spec.revenue_currency, rate, others)
    rate_words = rate.words() + "".join(f" Amounts given in {c} converted at 1 USD = {r.units_per_usd:g} {c}, dated "
                                        f"{r.date}; source {r.source} ({r.status})." for c, r in converted.items())
    models, out_models = [], []
    for m in spec.models:
        run = served(m, spec, root)
        price = model_price(m, run, spec, rate, others)
        models.append((m, run, price))
        out_models.append({"name": m.name, "run": run.to_dict(), "price": price.to_dict(),
                           "daily_requests": m.daily_requests, "inferences_per_request": m.inferences_per_request,
                           "today": today(m, run, price, spec, rate),
                           "trace": {"capacity_before": run.before.source, "capacity_after": run.after.source,
                                     "high_before": run.before.high_source, "high_after": run.after.high_source,
                                     "price": f"{price.price_id} ({price.mode}): {price.how}; {price.source}, "
                                              f"as of {price.as_of}, confidence {price.confidence}",
                                     "rate": rate_words}})
    years = [year_row(spec, models, rate, t, case, revenue_usd) for case in CASES for t in range(spec.years)]
    base = [y for y in years if y["case"] == "base"]
    first = base[0]
    return {"prospectus_format": PROSPECTUS_FORMAT, "title": spec.title, "currency": spec.currency.upper(),
            "rate": rate.to_dict(), "rate_words": rate_words, "params_file": params_file,
            "converted_rates": {c: r.to_dict() for c, r in converted.items()},
            "revenue_currency": spec.revenue_currency.upper(),
            "made": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "params": shown.model_dump(),
            "policy": spec.policy,
            "definitions": {
                "fleet_per_1m": "what the fleet costs over a day divided by the inferences it serves that day, x 1M "
                                "(the headline)",
                "floor_per_1m": "one instance's hourly price over what it serves at the target utilization, x 1M: "
                                "the floor no fleet gets under",
                "cases": f"low: traffic x {spec.bands.low:g}, each engine at the low end of its measured capacity "
                         f"range; base: traffic x 1, the confirmed capacity; high: traffic x {spec.bands.high:g}, the "
                         "high end",
                **{f"case {c}": w for c, w in (
                    ("low", f"traffic x {spec.bands.low:g}, each engine at the low end of its measured capacity range"),
                    ("high", f"traffic x {spec.bands.high:g}, each engine at the high end of its measured capacity "
                             "range"))},
                "gross_margin": "(revenue - other cost of revenue - inference OPEX) / revenue",
                "autoscaled": f"each hour's need, started ceil({spec.lead_time_h:g} h) ahead, never under "
                              f"{spec.min_instances}, plus {spec.redundancy} spare(s)",
                "peak-sized": f"the peak hour's need all day, plus {spec.redundancy} spare(s)"},
            "models": out_models, "years": years,
            "headline": {"fiscal_year": first["fiscal_year"], "opex_before": first["opex_before"],
                         "opex_after": first["opex_after"], "savings": first["savings"],
                         "margin_contribution_pp": first["margin_contribution_pp"],
                         "savings_over_years": sum(y["savings"] for y in base)},
            "data_tables": {"prices": shown.price_table or "data/prices.csv", "price_modes": shown.price_modes or
                            "data/price_modes.csv", "rates": shown.rate_table or "data/exchange_rates.csv"}}
