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
# # scaleproof ledger report
#
# Runs indexed in the ledger (`scaleproof ledger add`): each row comes from a run folder that passed
# `verify` (a copied-in folder: every file it holds matches its manifest; what it left behind is counted).
# Cost per 1M inferences, confirmed capacity and P99 over time with their measured ranges, per device type
# and model version; a before/after of two runs; and the cheapest device type per model at the SLA, where
# overlapping ranges are named as ties. Rendered without code by `scaleproof ledger report`.

# %% tags=["parameters"]
ledger_path: str = ""  # SQLite ledger (empty: build one now from the run folders under runs_dir)
runs_dir: str = "../benchmarks/results"  # run folders indexed when ledger_path is empty
models: list = []  # only runs whose model contains one of these (empty: all)
device_types: list = []  # only runs whose device type contains one of these, e.g. ["H100", "H200"] (empty: all)
since: str = ""  # only runs made on or after this date, YYYY-MM-DD (empty: no bound)
until: str = ""  # only runs made on or before this date, YYYY-MM-DD (empty: no bound)
before_run: str = ""  # run id of the before/after view's before (empty: the oldest priced run of the main model)
after_run: str = ""  # run id of the before/after view's after (empty: the newest priced run of that model)

# %%
from IPython.display import Markdown, display

from scaleproof.ledger import report

ledger, refused = report.open_ledger(ledger_path, runs_dir)
runs = report.select(ledger, models, device_types, since, until)
display(Markdown(f"## {len(runs)} runs of the ledger `{report.Path(ledger).name if ledger_path else runs_dir}`"
                 + (f" ({len(refused)} run folders refused: they do not verify)" if refused else "")))
report.runs_table(runs)

# %% [markdown]
# ## Cheapest device type per model at the SLA
#
# Per model, model version, SLA and profile, each device type (per instance shape and price row) is represented
# by its latest priced run's headline engine. A winner is named only when its cost range is apart from every
# other's; types whose ranges chain together with the cheapest's, or that have no measured range, are a tie.

# %%
display(Markdown(report.choice_markdown(runs)))

# %% [markdown]
# ## Over time, per device type and model version

# %%
fig = report.plot_trends(runs)

# %% [markdown]
# ## Before and after

# %%
pair = report.default_pair(runs, before_run, after_run)
if pair:
    table, diff = report.before_after(ledger, *pair)
    display(table)
    display(Markdown(report.before_after_markdown(diff)))
else:
    display(Markdown("Fewer than two priced runs of one model are selected: no before/after to show."))

# %% [markdown]
# ## Refused run folders

# %%
if ledger_path:
    display(Markdown("This report reads a ledger built beforehand: `scaleproof ledger add` named the folders it refused."))
else:
    display(Markdown("\n".join(f"- `{f}`: {reasons[0]}" + (f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else "")
                               for f, reasons in refused) or "None."))
