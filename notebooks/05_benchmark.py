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
# # 05 · Benchmark: MLPerf LoadGen scenarios, peak Server QPS, and latency per batch size
#
# Measures every validated engine and the PyTorch FP32 baseline in the same run, each in its own
# process. First the timing harness per batch size (warm-up, repeats until both minimums are met);
# then MLPerf LoadGen's SingleStream, Offline and Server scenarios through the dynamic batcher, and
# a bounded search for the highest Server QPS that is VALID under the P99 bound, with dynamic and
# with static batching. Anything that breaks a validity rule is reported as INVALID with its reason.
# Writes `benchmark/benchmark.json` and LoadGen's logs under `benchmark/loadgen/`.

# %% tags=["parameters"]
run_dir: str = "../outputs/dev"  # folder the stages read and write (the runner sets it)
model: str = "zoo:digits-cnn"  # zoo:NAME or package.module:factory returning a torch.nn.Module
input_shape: list = []  # input shape without the batch axis; needed for models outside the zoo
inputs: list = []  # named inputs: [{name, dtype, shape: [batch, ...], range}] (empty: input_shape or the zoo model's)
outputs: list = []  # output names, picked by name from dict/ModelOutput results (empty: the model's)
dims: dict = {}  # size of each named dynamic dimension other than batch, e.g. {seq: 128}
weights: str = ""  # safetensors file or torch checkpoint (read weights-only, never as a pickle) loaded into the model
weights_strict: bool = True  # every key of the weights file must fit the model (false: keys matching weights_ignore may be left out or left over)
weights_ignore: list = []  # fnmatch patterns of checkpoint or model keys that weights_strict: false lets go unloaded, e.g. ['pooler.*', 'embeddings.position_ids']
calib_data: str = ""  # calibration data: .npz, image folder, .parquet/.csv or package.module:loader (empty: the zoo's data or synthetic)
val_data: str = ""  # validation data, same forms as calib_data (the same source as calib_data is split disjointly)
image_mean: list = [0.485, 0.456, 0.406]  # per-channel mean of image-folder preprocessing (pixels scaled to [0, 1] first)
image_std: list = [0.229, 0.224, 0.225]  # per-channel std of image-folder preprocessing
seed: int = 0  # seed for data selection and synthetic inputs
threads: int = 0  # CPU threads for inference (0: all usable cores)
max_batch: int = 64  # largest batch an engine must accept
batch_sizes: list = [1, 8, 32]  # batch sizes to time
warmup: int = 10  # untimed iterations before timing each batch size
min_repeats: int = 30  # fewest timed iterations for a valid result
min_time_s: float = 1.0  # shortest timed duration per batch size for a valid result
max_cov: float = 0.2  # largest spread (CoV of 5 block means of latency) for a valid result
sla_p99_ms: float = 15.0  # P99 latency bound of the Server scenario (MLPerf uses 15 ms for ResNet-50)
batcher_max_batch: int = 32  # largest batch the dynamic batcher forms
max_queue_delay_ms: float = 2.0  # longest a request waits in the batcher for a fuller batch
static_batch: int = 1  # batch of the static comparison: fixed size, no queue window
static_search: bool = True  # search the static-batching Server peak too (the dynamic-vs-static comparison)
trt_min_batch: int = 1  # smallest batch of the TensorRT optimization profile
trt_opt_batch: int = 0  # batch TensorRT tunes kernels for (0: batcher_max_batch)
loadgen_min_duration_s: float = 1.0  # LoadGen minimum duration per run (MLPerf: 600)
loadgen_min_queries: int = 100  # LoadGen minimum query count per run (MLPerf Server: 270336)
peak_search_runs: int = 8  # most Server runs the peak-QPS search may take per engine and batching
peak_tolerance: float = 0.05  # bisect until the highest VALID and lowest INVALID targets are this close (relative)
scaling_devices: int = 0  # devices for the per-device scaling of the best engine (0: skip, -1: all GPUs; CPU workers stand in on a CPU machine)
peak_repeats: int = 0  # independent peak searches per engine, for the run-to-run range (0: 2 on a CPU, 3 on a GPU)
min_priced_duration_s: float = 0.0  # shortest LoadGen run a priced capacity may come from (0: 10 s on a CPU, 30 s on a GPU); below that default the run is exploratory
confirm_steps: int = 5  # confirmation runs: at the highest rate every peak search vouched for (or the share of it this run's earlier confirmations held, 80% at the lowest), then down by 1x, 2x, 4x ... peak_tolerance while INVALID
remeasure_flagged: bool = True  # measure a confirmed engine once more when an anomaly check flags its capacity (not for unstable_timings)
confirm: str = "leaders"  # which engines get the priced confirmation run: leaders (the baseline and every engine not clearly behind the fastest's search range; the rest are reported with their search figures, not priced) or all (every engine priced)
server_duration_budget_s: float = 60.0  # longest a Server run may last to meet LoadGen's early stopping at a low rate (a slow model needs ~460 queries per VALID run)
sweep_max_batch: list = []  # batcher max batches to sweep with sweep_queue_delay_ms (empty: batcher_max_batch only)
sweep_queue_delay_ms: list = []  # batcher queue delays to sweep with sweep_max_batch (empty: max_queue_delay_ms only)

# %%
from IPython.display import Markdown, display

from scaleproof import stages
from scaleproof.config import Params
from scaleproof.presentation import benchmark as view
from scaleproof.stages import benchmark

params = Params.from_namespace(globals())
benchmark.run(params)
result = stages.read_typed(params.run_path, "05_benchmark")

# %%
display(Markdown(f"Device `{result.device_slug}`, {result.threads} threads. LoadGen: {result.loadgen.model_dump()}. "
                 f"Capacity for the cost model: {result.capacity_method}."))
view.loadgen_table(result)

# %%
fig = view.plot_server(result)

# %%
fig = view.plot_throughput(result)

# %% [markdown]
# ## Batcher sweep (`sweep_max_batch` × `sweep_queue_delay_ms`)

# %%
view.batcher_sweep_table(result)

# %%
fig = view.plot_batcher_sweep(result)

# %%
view.timings_table(result)

# %% [markdown]
# ## Per-device scaling (`scaling_devices`)

# %%
display(Markdown(view.scaling_markdown(result)))
