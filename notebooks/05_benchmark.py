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
# # 05 · Benchmark: latency and throughput per batch size
#
# Times every validated engine and the PyTorch FP32 baseline in the same run, each in its own
# process: warm-up, then repeated timed runs until both minimums are met. A timing that breaks a
# validity rule is reported as INVALID with its reason. Writes `benchmark/benchmark.json`.

# %% tags=["parameters"]
run_dir = "../outputs/dev"  # folder the stages read and write (the runner sets it)
model = "zoo:digits-cnn"  # zoo:NAME or package.module:factory returning a torch.nn.Module
input_shape = []  # input shape without the batch axis; needed for models outside the zoo
seed = 0  # seed for data selection and synthetic inputs
threads = 0  # CPU threads for inference (0: all usable cores)
max_batch = 64  # largest batch an engine must accept
batch_sizes = [1, 8, 32]  # batch sizes to time
warmup = 10  # untimed iterations before timing each batch size
min_repeats = 30  # fewest timed iterations for a valid result
min_time_s = 1.0  # shortest timed duration per batch size for a valid result
max_cov = 0.2  # largest spread (CoV of 5 block means of latency) for a valid result
sla_p99_ms = 15.0  # P99 latency bound a batch must meet to count towards capacity

# %%
from IPython.display import Markdown, display
from scaleproof import report
from scaleproof.bench import stage
from scaleproof.config import Params

params = Params.from_namespace(globals())
result = stage.run(params)

# %%
display(Markdown(f"Device `{result['device_slug']}`, {result['threads']} threads, harness {result['harness']}."))
fig = report.plot_throughput(result)

# %%
report.timings_table(result)
