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
# # scaleproof prospectus
#
# What a fleet serving the measured models costs in the reader's currency, over a day and over the fiscal
# years, against revenue and gross margin, before and after the optimization. Every figure is computed by
# `scaleproof.prospectus` from the priced run folders, the price table and the dated exchange rate named in
# the trace at the end; the same figures are in `prospectus.json`, `prospectus.xlsx` and `csv/`. Rendered
# without code to `prospectus.html` by `scaleproof prospectus`.

# %% tags=["parameters"]
params_file: str = "params/prospectus-example.yaml"  # prospectus params (YAML), relative to root: models, traffic, currency, years
root: str = ".."  # folder the params file and its relative paths (run folders, tables, profiles) are read from
out_dir: str = "../outputs/prospectus"  # folder prospectus.json, prospectus.xlsx and csv/ are written to
overrides_json: str = "{}"  # JSON object of top-level params replaced after the file is read

# %%
import json
from pathlib import Path

from IPython.display import Markdown, display

from scaleproof.prospectus import figures
from scaleproof.prospectus.forecast import build
from scaleproof.prospectus.outputs import write_outputs
from scaleproof.prospectus.spec import load_spec

spec = load_spec(Path(root) / params_file, json.loads(overrides_json))
result = build(spec, params_file, root)
files = write_outputs(result, out_dir)
display(Markdown(figures.headline_markdown(result)))

# %% [markdown]
# ## Before and after the optimization
#
# Capacity per accelerator (the confirmed LoadGen Server QPS of each engine), the memory the benchmark
# measured for it, and what one request costs on the fleet of the headline policy (log scales).

# %%
fig = figures.before_after_figure(result)

# %% [markdown]
# ## Today's fleets, both policies
#
# *Peak-sized*: the peak hour's instances all day. *Autoscaled*: each hour's instances, started a lead time
# ahead, never under the minimum. *Fleet per 1M* is the fleet's cost over what it serves (the headline);
# *floor per 1M* is one instance at the target utilization, which no fleet gets under.

# %%
display(figures.models_table(result).style.hide(axis="index"))
display(Markdown(figures.rate_line(result)))

# %% [markdown]
# ## Year by year (base case)

# %%
display(figures.year_table(result, "base").style.hide(axis="index"))
display(Markdown(figures.rate_line(result) + "  \n" + result["definitions"]["gross_margin"]))

# %% [markdown]
# ## Scenario bands
#
# The low and high cases move traffic by the user's bands and each engine to that end of its measured
# capacity range.

# %%
fig = figures.bands_figure(result)

# %%
for case in ("low", "high"):
    display(Markdown(f"**{case} case**: {result['definitions'][f'case {case}']}"))
    display(figures.year_table(result, case).style.hide(axis="index"))
display(Markdown(figures.rate_line(result)))

# %% [markdown]
# ## Where every figure comes from

# %%
display(figures.trace_table(result).style.hide(axis="index"))
display(Markdown(f"Price tables: {result['data_tables']['prices']}, {result['data_tables']['price_modes']}; "
                 f"rates: {result['data_tables']['rates']}; params: {result['params_file']}. "
                 f"Written: {', '.join(sorted(str(p.name) for p in files.values()))}."))
