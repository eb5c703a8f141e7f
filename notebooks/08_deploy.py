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
# # scaleproof deploy
#
# A published run's validated, priced engines, written into a Triton Inference Server model repository
# as a new version per model, with the Kubernetes objects for the run's GPU type. The runner executes
# this notebook after a run is published when the profile sets `deploy_repo`; `scaleproof deploy RUN
# --repo DIR` does the same without a notebook. A run that fails `scaleproof verify` is refused.

# %% tags=["parameters"]
run_dir = ""  # a published run folder (outputs/<run_id>, with manifest.json)
deploy_repo = ""  # Triton model repository to deploy into (created; earlier versions are kept)

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from scaleproof import triton_repo
from scaleproof.k8s_manifests import deploy_with_manifests

if not run_dir or not deploy_repo:
    raise ValueError("pass run_dir (a published run) and deploy_repo, e.g. papermill 08_deploy.ipynb out.ipynb "
                     "-p run_dir outputs/<run_id> -p deploy_repo models")
doc, manifests = deploy_with_manifests(run_dir, deploy_repo, log=lambda _: None)
run_id = Path(run_dir).resolve().name
mine = [d for d in doc["deploys"] if d["run_id"] == run_id and doc["pins"].get(d["model"]) == d["version"]]

# %% [markdown]
# ## What was deployed
#
# One row per model: the version this deploy added and pinned, the engine it comes from, the Triton
# backend, the dynamic batcher configuration the run measured as best, and each file's sha256 as
# recorded in `deploy.json`.

# %%
pd.DataFrame([{
    "model": d["model"], "version": d["version"], "engine": d["engine"],
    "Triton backend": triton_repo.BACKENDS[d["backend"]],
    "batcher": f"max batch {d['batcher']['max_batch']}, {d['batcher']['max_queue_delay_ms']:g} ms" if d["batcher"] else "none",
    "files": ", ".join(f"{Path(f).name} ({h[:12]}…)" for f, h in d["files"].items()),
} for d in mine])

# %%
skipped = doc.get("skipped", [])
display(Markdown("Not deployed: " + "; ".join(f"`{s['engine']}` ({s['reason']})" for s in skipped)
                 if skipped else "Every validated, priced engine of the run was deployed."))

# %% [markdown]
# ## Model configurations
#
# Each `config.pbtxt` as written: inputs and outputs from the ONNX graph (LibTorch's positional
# `INPUT__i` / `OUTPUT__i` for TorchScript programs), the measured batcher, and the pinned version.

# %%
for d in mine:
    text = (Path(deploy_repo) / d["model"] / "config.pbtxt").read_text()
    display(Markdown(f"**{d['model']}**\n\n```\n{text}```"))

# %% [markdown]
# ## Kubernetes objects
#
# A Deployment and a Service for the run's GPU type: node selector on the GPU Feature Discovery
# product label, `nvidia.com/gpu` requests, readiness on Triton's `/v2/health/ready`, and replicas
# from the cost model's instance count for the profile's load.

# %%
display(Markdown(f"`{manifests}`\n\n```yaml\n{manifests.read_text()}```"))

# %% [markdown]
# ## Check

# %%
problems, checked = triton_repo.verify_repo(deploy_repo)
assert not problems, problems
display(Markdown(f"`scaleproof verify {deploy_repo}`: {checked['artifacts']} files and {checked['claims']} "
                 "configurations match `deploy.json`. Serve it on this CPU and measure it against the "
                 f"in-process engine: `scaleproof serve-bench {run_dir} --repo {deploy_repo}`."))
