"""A prospectus's parameters (params/prospectus-example.yaml): the served models and their traffic, the
currency, the fleet policy, the years and the business around it. Every field typed and described; an
unknown or ill-typed field is refused with its name."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ParamsError

Mode = Literal["on-demand", "reserved-1y", "reserved-3y", "spot", "owned"]
RefusingFlag = Literal["repeats_disagree", "server_below_offline"]


class StatedCapacity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    before_qps: float = Field(gt=0, description="capacity per accelerator before the optimization (inferences/s)")
    after_qps: float = Field(gt=0, description="capacity per accelerator after the optimization (inferences/s)")
    before_memory_gb: float | None = Field(None, description="accelerator memory before (GB)")
    after_memory_gb: float | None = Field(None, description="accelerator memory after (GB)")
    accelerator: str = Field("stated accelerator", description="what the capacities were measured on, in words")


class ServedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="the served model's name in the prospectus")
    run: str = Field("", description="priced run folder (a path, or a run id under runs_dir); empty: give capacity")
    capacity: StatedCapacity | None = Field(None, description="capacities stated instead of a run folder")
    before: str = Field("", description="engine priced as 'before' (empty: the run's baseline)")
    after: str = Field("", description="engine priced as 'after' (empty: the run's best)")
    daily_requests: float = Field(gt=0, description="requests per day in the first fiscal year")
    inferences_per_request: float = Field(1.0, gt=0, description="model inferences one request needs "
                                          "(e.g. candidates a recommender scores)")
    profile: str = Field("default", description="daily shape: 'default', 'flat' or a CSV of 24 hourly figures")
    price_row: str = Field("", description="row of the price table (empty: the row the run was priced at)")
    price_mode: Mode = Field("on-demand", description="how an accelerator-hour is paid for")
    price_per_hour: float = Field(0.0, ge=0, description="override: price per accelerator-hour in price_currency "
                                  "(0: the table's row in price_mode)")
    price_currency: str = Field("USD", description="currency of price_per_hour (USD or a row of rate_table)")
    accept_flags: list[RefusingFlag] = Field(default_factory=list, description="price an engine of the run even "
                                             "though its benchmark flagged it so (its capacity is in doubt); the "
                                             "prospectus then says so beside the figure")

    @model_validator(mode="after")
    def one_source(self) -> ServedModel:
        if bool(self.run) == (self.capacity is not None):
            raise ValueError(f"model {self.name!r}: give either run (a priced run folder) or capacity, not both/neither")
        if self.capacity is not None and not self.price_row and not self.price_per_hour:
            raise ValueError(f"model {self.name!r}: stated capacities need price_row or price_per_hour")
        return self


class Bands(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float = Field(0.8, gt=0, description="traffic multiple of the low case")
    high: float = Field(1.25, gt=0, description="traffic multiple of the high case")


class ProspectusSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field("Inference cost prospectus", description="heading of the prospectus")
    runs_dir: str = Field("outputs", description="folder a model's run is looked up in when it is a run id")
    currency: str = Field("USD", description="currency of every amount: USD, CNY, EUR or a row of rate_table")
    rate: str = Field("", description="exchange-rate override CURRENCY=UNITS_PER_USD@DATE (empty: the table's)")
    rate_table: str = Field("", description="CSV of dated exchange rates (empty: data/exchange_rates.csv)")
    price_table: str = Field("", description="CSV of on-demand prices (empty: data/prices.csv)")
    price_modes: str = Field("", description="CSV of reserved/spot/owned modes (empty: data/price_modes.csv)")
    policy: Literal["peak-sized", "autoscaled"] = Field("autoscaled", description="fleet policy of the headline")
    target_utilization: float = Field(0.7, gt=0, le=1, description="planned utilization of an instance in its hour")
    redundancy: int = Field(1, ge=0, description="spare instances beyond what each hour needs (1: N+1)")
    min_instances: int = Field(1, ge=0, description="autoscaled: never fewer instances than this (before spares)")
    lead_time_h: float = Field(0.25, ge=0, description="autoscaled: hours an instance takes to start "
                               "(rounded up to whole hours)")
    fiscal_year: int = Field(2027, description="first fiscal year of the forecast")
    years: int = Field(3, ge=1, le=15, description="fiscal years forecast")
    traffic_growth: float = Field(0.5, gt=-1, description="traffic growth per year (0.5: +50%)")
    compute_growth: float = Field(0.0, gt=-1, description="growth per year of the compute one request needs "
                                  "(larger models): capacity per request shrinks by it")
    price_change: float = Field(-0.1, gt=-1, description="change per year of the hourly price (-0.1: 10% cheaper)")
    revenue_per_request: float = Field(0.0, ge=0, description="revenue per request, in revenue_currency (or 0)")
    revenue_per_year: float = Field(0.0, ge=0, description="revenue of the first year, in revenue_currency; grows "
                                    "with traffic (used when revenue_per_request is 0)")
    revenue_currency: str = Field(description="currency the revenue is given in (USD or a row of rate_table): "
                                  "converted like every other amount, so --currency never changes what it means")
    other_cost_share: float = Field(0.0, ge=0, lt=1, description="other cost of revenue as a share of revenue "
                                    "(a share, so it needs no currency)")
    bands: Bands = Field(default_factory=Bands, description="traffic multiples of the low and high cases")
    models: list[ServedModel] = Field(min_length=1, description="the served models, each with its own traffic")

    @field_validator("rate", mode="before")
    @classmethod
    def rate_written(cls, value: object) -> object:
        if value is None:
            raise ValueError("empty; write the rate as CURRENCY=UNITS_PER_USD@YYYY-MM-DD (e.g. --set "
                             "rate=CNY=7.18@2026-12-07), or leave it out to use rate_table's")
        if isinstance(value, str) and value.strip():
            from .money import user_rate

            try:
                user_rate(value)
            except ParamsError as e:
                raise ValueError(str(e)) from None
        return value

    @model_validator(mode="after")
    def revenue_given(self) -> ProspectusSpec:
        if not self.revenue_per_request and not self.revenue_per_year:
            raise ValueError("give revenue_per_request or revenue_per_year: a margin needs revenue")
        if len({m.name for m in self.models}) != len(self.models):
            raise ValueError("model names must be unique")
        return self


def load_spec(path: str | Path, overrides: dict | None = None) -> ProspectusSpec:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"prospectus params {path} do not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: a prospectus params file is a mapping of names to values")
    raw.update(overrides or {})
    return spec_from(raw, str(path))


def spec_from(raw: dict, where: str = "params") -> ProspectusSpec:
    try:
        return ProspectusSpec.model_validate(raw)
    except ValidationError as e:
        lines = [f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg'].removeprefix('Value error, ')}"
                 + (" (got an empty value)" if err.get("input", "") is None and err["type"].endswith("_type") else "")
                 for err in e.errors()]
        raise ParamsError(f"{where}: " + "; ".join(lines) + " (see params/prospectus-example.yaml)") from None


def describe() -> list[tuple[str, str, str]]:
    """(name, type, meaning) of every top-level and per-model field, for help text and docs."""
    out = []
    for cls, prefix in ((ProspectusSpec, ""), (ServedModel, "models[]."), (StatedCapacity, "models[].capacity.")):
        for name, f in cls.model_fields.items():
            if get_origin(f.annotation) is Literal:
                kind = "one of " + ", ".join(get_args(f.annotation))
            else:
                kind = getattr(f.annotation, "__name__", None) or str(f.annotation)
                kind = kind.replace("typing.", "").replace(f"{__name__}.", "")
            out.append((prefix + name, kind, f.description or ""))
    return out
