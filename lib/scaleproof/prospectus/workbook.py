"""The prospectus as tables a finance team can check: one builder of rows, written both as an .xlsx workbook
(openpyxl: inputs, rates and prices, per-model, per-year and per-year-per-model sheets) and as CSVs, every
value the one in prospectus.json."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..errors import ParamsError
from ..provenance import atomic_write_bytes

YEAR_COLUMNS = ("fiscal_year", "case", "traffic_multiple", "requests", "opex_before", "opex_after", "savings", "revenue", "other_cost_of_revenue", "opex_share_before",
                "opex_share_after", "gross_margin_before", "gross_margin_after", "margin_contribution_pp")
MODEL_COLUMNS = ("model", "policy", "side", "engine", "capacity_per_instance", "memory_gb", "peak_instances",
                 "instance_hours_per_day", "cost_per_year", "fleet_per_1m", "floor_per_1m", "fleet_per_request",
                 "floor_per_request", "mean_utilization", "capacity_source", "price_row", "price_mode", "price_source",
                 "benchmark_flags", "accepted_flags")
YEAR_MODEL_COLUMNS = ("fiscal_year", "case", "model", "instance_type", "daily_requests", "inferences_per_request", "instances_before",
                      "instances_after", "opex_before", "opex_after", "fleet_per_1m_before", "fleet_per_1m_after")


def tables(result: dict[str, Any]) -> dict[str, tuple[tuple[str, ...], list[list[Any]]]]:
    """Sheet name -> (columns, rows)."""
    cur = result["currency"]
    inputs = [[k, json.dumps(v) if isinstance(v, dict | list) else v] for k, v in result["params"].items()
              if k != "models"]
    inputs += [[f"models[{m['name']}].{k}", json.dumps(v) if isinstance(v, dict | list) else v]
               for m in result["params"]["models"] for k, v in m.items()]
    inputs += [["exchange rate", f"1 USD = {result['rate']['units_per_usd']:g} {cur}"],
               ["rate date", result["rate"]["date"]], ["rate source", result["rate"]["source"]],
               ["rate status", result["rate"]["status"]], ["params file", result["params_file"]],
               ["made", result["made"]]] + [[f"definition: {k}", v] for k, v in result["definitions"].items()]
    prices = [[m["name"], m["price"]["price_id"], m["price"]["mode"], m["price"]["usd_per_hour"],
               m["price"]["usd_per_hour"] * result["rate"]["units_per_usd"], m["price"]["how"], m["price"]["source"],
               m["price"]["as_of"], m["price"]["confidence"], m["price"]["page"]] for m in result["models"]]
    per_model = []
    for m in result["models"]:
        for pol, sides in m["today"]["fleets"].items():
            for side, f in sides.items():
                eng = m["run"][side]
                per_model.append([m["name"], pol, side, eng["engine"], eng["instance_qps"], eng["memory_gb"],
                                  f["peak_instances"], f["instance_hours_per_day"], f["cost_per_year"],
                                  f["fleet_per_1m"], f["floor_per_1m"], f["fleet_per_request"], f["floor_per_request"],
                                  f["mean_utilization"], eng["source"], m["price"]["price_id"], m["price"]["mode"],
                                  m["price"]["source"], "; ".join(f"{x['rule']}: {x['detail']}" for x in eng["flags"]),
                                  ", ".join(eng["accepted_flags"])])
    kinds = list(dict.fromkeys(k for y in result["years"] for k in y["instances"]))  # instances per machine type
    year_columns = (*YEAR_COLUMNS[:4], *(f"instances_{side} {k}" for k in kinds for side in ("before", "after")),
                    *YEAR_COLUMNS[4:])
    years = [[*(y[c] for c in YEAR_COLUMNS[:4]), *(y["instances"].get(k, {}).get(side, 0) for k in kinds
                                                  for side in ("before", "after")), *(y[c] for c in YEAR_COLUMNS[4:])]
             for y in result["years"]]
    by_model = [[y["fiscal_year"], y["case"], x["model"], x["instance_type"], x["daily_requests"], x["inferences_per_request"],
                 x["before"]["instances"], x["after"]["instances"], x["before"]["opex"], x["after"]["opex"],
                 x["before"]["fleet_per_1m"], x["after"]["fleet_per_1m"]] for y in result["years"] for x in y["models"]]
    hours = [[m["name"], pol, side, *f["instances_by_hour"]] for m in result["models"]
             for pol, sides in m["today"]["fleets"].items() for side, f in sides.items()]
    hours += [[m["name"], "traffic multiplier", "", *m["today"]["profile"]["multipliers"]] for m in result["models"]]
    return {"Inputs": (("name", "value"), inputs),
            "Prices": (("model", "price_row", "mode", "usd_per_instance_hour", f"{cur}_per_instance_hour", "how",
                        "source", "as_of", "confidence", "page"), prices),
            "Models": (MODEL_COLUMNS, per_model),
            "Years": (year_columns, years),
            "Years by model": (YEAR_MODEL_COLUMNS, by_model),
            "Day by hour": (("model", "policy", "side", *(f"h{h:02d}" for h in range(24))), hours)}


def write_workbook(result: dict[str, Any], path: Path) -> Path:
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Font
    except ImportError:
        raise ParamsError("the prospectus workbook needs openpyxl: pip install 'scaleproof[prospectus]' "
                          "(or openpyxl>=3.1)") from None

    wb = Workbook()
    wb.remove(wb.active)
    for name, (columns, rows) in tables(result).items():
        ws = wb.create_sheet(name)
        ws.append(list(columns))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(row)
        ws.append([])
        ws.append([f"Amounts in {result['currency']}. {result['rate_words']}"])  # the rate under every table
    buf = io.BytesIO()
    wb.save(buf)
    return atomic_write_bytes(path, buf.getvalue())


def csv_name(sheet: str) -> str:
    return sheet.lower().replace(" ", "_") + ".csv"


def write_csvs(result: dict[str, Any], folder: Path) -> list[Path]:
    out = []
    for name, (columns, rows) in tables(result).items():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
        w.writerow([f"# Amounts in {result['currency']}. {result['rate_words']}"])  # the rate under every table
        out.append(atomic_write_bytes(folder / csv_name(name), buf.getvalue().encode("utf-8")))
    return out
