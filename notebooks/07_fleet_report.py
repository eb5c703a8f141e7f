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
# # scaleproof fleet report
#
# The same model, engines and precisions, measured on each GPU type of a fleet run
# (`scaleproof fleet`): one member run per type, each on a node of that type. Every row names the
# member run it comes from and the sha256 of that run's manifest; `scaleproof verify FLEET_DIR`
# re-checks the member runs. Rendered without code to `fleet_report.html`.

# %% tags=["parameters"]
fleet_dir = "../benchmarks/results/fleet-example"  # fleet folder (fleet.json and runs/ inside)

# %%
from IPython.display import Markdown, display

from scaleproof import fleet_report

summary = fleet_report.summarize(fleet_dir)
display(Markdown(fleet_report.cheapest_markdown(summary)))

# %% [markdown]
# ## Engines across GPU types
#
# Server peak QPS at the P99 bound, P99 at that peak, memory, each type's hourly price, cost per
# 1M inferences, and the instances and annual cost for the profile's target load.

# %%
fleet_report.comparison_table(summary)

# %%
fig = fleet_report.plot_fleet(summary)
