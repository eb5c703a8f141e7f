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
run_dir = "../outputs/dev"  # folder the stages read and write (the runner sets it)
price_table = ""  # CSV of prices with source and date per row (empty: the shipped table)
instance = "auto"  # price-table row to price this machine at (auto: chosen by device)
price_usd_per_hour = 0.0  # override the table's hourly price (0: use the table)
target_peak_qps = 100000.0  # peak load the fleet must serve, queries per second
target_utilization = 0.7  # planned utilization of each instance at peak

# %%
import pandas as pd
from IPython.display import Markdown, display

from scaleproof import cost, report, stages
from scaleproof.config import Params

params = Params.from_namespace(globals())
result = cost.run(params)
exported = stages.read_result(params.run_path, "01_export")
validated = stages.read_result(params.run_path, "04_validate")
bench = stages.read_result(params.run_path, "05_benchmark")
display(Markdown(report.summary_markdown(result, validated, exported)))

# %% [markdown]
# ## Engines priced

# %%
report.engines_table(result)

# %%
fig = report.plot_cost(result)

# %% [markdown]
# ## Load test: MLPerf LoadGen scenarios, dynamic vs static batching

# %%
report.loadgen_table(bench)

# %%
fig = report.plot_server(bench)

# %%
fig = report.plot_throughput(bench)

# %% [markdown]
# ## Engines excluded from the claims

# %%
pd.DataFrame(result["excluded"], columns=["engine", "reason"]) if result["excluded"] else Markdown("None: every engine passed validation and has a valid timing.")

# %% [markdown]
# ## Methodology and assumptions

# %%
display(Markdown(
    f"- **Capacity:** {bench['capacity_method']}.\n"
    f"- **Load generator:** MLPerf LoadGen, {bench['loadgen']}; LoadGen's logs are kept under `benchmark/loadgen/`.\n"
    f"- **Timing harness:** {bench['harness']}; device `{bench['device_slug']}`, {bench['threads']} threads.\n"
    f"- **Accuracy gate:** {validated['gate']} on {validated['samples']} validation samples; metric: {validated['metric']}.\n"
    f"- **Reference:** {validated['reference']}.\n"
    f"- **Cost:** USD per 1M = hourly price / (capacity × utilization × 3600) × 10⁶; instances = "
    f"⌈peak QPS / (capacity × utilization)⌉; annual = instances × hourly price × {result['assumptions']['hours_per_year']} h.\n"
    f"- **Assumptions:** {result['assumptions']}."))
pd.DataFrame([result["price"]]).set_index("id")

# %% [markdown]
# ## Validation

# %%
report.validation_table(validated)

# %% [markdown]
# ## All timings

# %%
report.timings_table(bench)

# %% [markdown]
# ## Where each claim comes from

# %%
pd.DataFrame(result["claims"])[["text", "value", "source", "key"]]
