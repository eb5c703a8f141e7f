# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # scaleproof report
#
# What this machine delivers for this model, what it costs, and where every number comes from.
# Rendered without code to `report.html`; each figure below is read from a stage's JSON result in
# the run folder, whose sha256 is listed in `manifest.json`.

# %% tags=["parameters"]
run_dir: str = "../outputs/dev"  # folder the stages read and write (the runner sets it)
peak_tolerance: float = 0.05  # bisect until the highest VALID and lowest INVALID targets are this close (relative)
price_table: str = ""  # CSV of prices with source and date per row (empty: the shipped table)
instance: str = "auto"  # price-table row to price this machine at (auto: chosen by device)
price_usd_per_hour: float = 0.0  # override the table's hourly price (0: use the table)
accelerators_per_instance: int = 1  # accelerators per priced instance: capacity is the per-accelerator peak times this times the measured scaling factor
daily_requests: float = 2880000000.0  # requests per day the service handles now
peak_to_average: float = 3.0  # peak QPS over the day's average QPS
target_utilization: float = 0.7  # planned utilization of each instance at peak
redundancy: int = 1  # spare instances beyond what the peak needs (1: N+1)
growth: list = [1.0, 2.0, 5.0]  # traffic multiples to plan for, e.g. now, 2x and 5x in 3 years
price_change: float = -0.2  # relative hourly price change in the price scenario (-0.2: 20% cheaper)
revenue_per_1k: float = 0.0  # revenue per 1,000 requests in USD (0: no margin figures)

# %%
import pandas as pd
from IPython.display import Markdown, display

from scaleproof import paths, stages
from scaleproof.config import Params
from scaleproof.presentation import benchmark as bench_view
from scaleproof.presentation import common
from scaleproof.presentation import cost_report as view
from scaleproof.presentation import validate as validate_view
from scaleproof.stages import cost_report

params = Params.from_namespace(globals())
cost_report.run(params)
result = stages.read_typed(params.run_path, "06_cost_report")
exported = stages.read_typed(params.run_path, "01_export")
validated = stages.read_typed(params.run_path, "04_validate")
bench = stages.read_typed(params.run_path, "05_benchmark")
calibrated = (stages.read_typed(params.run_path, "02_calibrate")
              if paths.result_path(params.run_path, "02_calibrate").exists() else None)
display(Markdown(common.run_header(params.run_path)))
display(Markdown(view.summary_markdown(result, validated, exported, calibrated, bench)))

# %% [markdown]
# ## Engines priced

# %%
view.engines_table(result)

# %% [markdown]
# ## Anomaly checks before pricing
#
# Each priced engine against each rule; a flagged engine stays priced, with the flag in bold in the key
# results above.

# %%
view.anomalies_table(result)

# %%
fig = view.plot_cost(result)

# %% [markdown]
# ## Scenarios: traffic growth and price change

# %%
view.scenarios_table(result)

# %%
fig = view.plot_scenarios(result)

# %% [markdown]
# ## Load test: MLPerf LoadGen scenarios, dynamic vs static batching

# %%
bench_view.loadgen_table(bench)

# %%
fig = bench_view.plot_server(bench)

# %%
fig = bench_view.plot_throughput(bench)

# %% [markdown]
# ## Batcher tuning: the swept configurations and the one each engine was priced with

# %%
display(Markdown(bench_view.batcher_words(bench)))
bench_view.batcher_sweep_table(bench)

# %%
fig = bench_view.plot_batcher_sweep(bench)

# %% [markdown]
# ## Engines excluded from the claims

# %%
pd.DataFrame([x.model_dump() for x in result.excluded], columns=["engine", "reason"]) if result.excluded else \
    Markdown("None: every engine passed validation and has a valid timing.")

# %% [markdown]
# ## Methodology and assumptions

# %%
display(view.methodology_table(bench, validated, result))
pd.DataFrame([result.price.model_dump()]).set_index("id")

# %% [markdown]
# ## Validation

# %%
validate_view.validation_table(validated)

# %% [markdown]
# ## All timings

# %%
bench_view.timings_table(bench)

# %% [markdown]
# ## Appendix: where each claim comes from
#
# Every claim above, the file and key it is read from, that file's sha256, and the command that
# re-creates it. `scaleproof verify <run folder>` re-hashes every file against `manifest.json` and
# checks each claim against its source.

# %%
view.claims_appendix(result, params.run_path)
