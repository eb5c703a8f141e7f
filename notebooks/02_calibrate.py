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
# # 02 · Calibrate: INT8 that keeps its accuracy, and FP16
#
# Post-training quantization into an explicit Q/DQ ONNX model (ONNX Runtime's tooling, or NVIDIA
# ModelOpt where installed), from a seeded calibration set disjoint from the validation split. The
# activation ranges go to a calibration cache keyed by model, data, method, settings and quantizer.
# Each quantized node is then judged alone (sensitivity); if INT8 fails the accuracy gate, the most
# sensitive nodes stay in FP32 until it passes (mixed precision). Writes `calibrate/model.int8.onnx`
# (or `model.int8-mixed.onnx`), `calibrate/model.fp16.onnx` (when fp16 is in `precisions` and an engine reads it) and `calibrate/calibrate.json`.

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
backend: str = "auto"  # auto, onnxruntime, torch or tensorrt
onnx_gpu: bool = False  # also build ONNX Runtime CUDA engines of the exported model (fp32, fp16 in precisions) beside the others; needs onnxruntime-gpu (the gpu extra)
precisions: list = ['fp32', 'int8']  # precisions to build (fp32, fp16, bf16, int8; on a CUDA GPU through torchao also fp8 and int8-weight-only)
calib_method: str = "minmax"  # minmax, entropy or percentile
calib_percentile: float = 99.999  # percentile of activations the percentile method keeps
calib_samples: int = 256  # number of calibration samples (disjoint from validation)
per_channel: bool = True  # per-channel weight scales
embedding_int8: bool = True  # embedding tables (float tables of at least 256 rows read only by Gather) as weight-only INT8 with one scale per row in the INT8 model
int8_format: str = "auto"  # INT8 format: auto (by the CPU's instruction set: s8s8 with VNNI, AMX or Arm dot products, s8s8-reduced-range without), s8s8, s8s8-reduced-range or u8u8
quantizer: str = "auto"  # auto, onnxruntime or modelopt (auto: ModelOpt if installed)
calib_cache_dir: str = ""  # folder of keyed calibration caches, shareable across runs (empty: calibrate/cache of the run)
sensitivity: bool = True  # rank quantized nodes by the accuracy cost of quantizing each alone
quant_scope: str = "all"  # INT8 scope: all, matmul, dynamic (CPU) or auto (each judged, the fastest inside the gate kept)
sensitivity_groups: int = 16  # most groups of nodes sensitivity judges (nodes grouped by layer); 0: every node alone
sensitivity_budget_s: float = 300.0  # time budget of sensitivity and mixed precision; unjudged groups are reported as such
mixed_precision: bool = True  # if INT8 fails the gate, keep the most sensitive nodes in FP32 until it passes
mixed_precision_max_nodes: int = 8  # most nodes (groups of nodes, on large models) mixed precision may keep in FP32
calib_compare: list = []  # calibration methods to compare by top-1 delta and INT8 speed (empty: none)
max_top1_drop: float = 1.0  # largest top-1 drop vs FP32, in points, that passes the gate
max_auc_drop: float = 0.5  # largest AUC drop vs FP32, in points (0.5: 0.005 AUC), that passes the gate (metric auc)
min_agreement: float = 0.97  # smallest top-1 agreement with FP32 that passes the gate
metric: str = "auto"  # auto, top1, agreement, cosine, error, auc (a one-wide sigmoid output with 0/1 labels) or user (metric_fn)
metric_output: str = ""  # output the metric judges (empty: the first)
metric_fn: str = ""  # package.module:fn(judged output, labels, FP32 reference) -> score, higher is better
max_metric_drop: float = 0.01  # largest drop of metric_fn's score vs FP32 that passes the gate
min_cosine: float = 0.99  # smallest mean cosine similarity to FP32 that passes the gate
max_output_err: float = 0.25  # largest mean |engine - FP32| over FP32's mean deviation between samples, judged output (always checked)
val_samples: int = 0  # validation samples to use (0: the whole split)
max_batch: int = 64  # largest batch an engine must accept
batcher_max_batch: int = 32  # largest batch the dynamic batcher forms
static_batch: int = 1  # batch of the static comparison: fixed size, no queue window
trt_min_batch: int = 1  # smallest batch of the TensorRT optimization profile
trt_opt_batch: int = 0  # batch TensorRT tunes kernels for (0: batcher_max_batch)
batch_sizes: list = [1, 8, 32]  # batch sizes to time
warmup: int = 10  # untimed iterations before timing each batch size
min_repeats: int = 30  # fewest timed iterations for a valid result
min_time_s: float = 1.0  # shortest timed duration per batch size for a valid result
max_cov: float = 0.2  # largest spread (CoV of 5 block means of latency) for a valid result

# %%
import pandas as pd
from IPython.display import Markdown, display

from scaleproof import stages
from scaleproof.config import Params
from scaleproof.presentation import calibrate as view
from scaleproof.stages import calibrate

params = Params.from_namespace(globals())
calibrate.run(params)
result = stages.read_typed(params.run_path, "02_calibrate")

# %%
display(Markdown(view.calibration_markdown(result)))

# %% [markdown]
# ## Sensitivity: each quantized node (or group of nodes) alone
#
# Every other node stays FP32; the model is judged on the validation split with the gate of
# `04_validate`. Ranked by accuracy cost, ties by output error. A model with more quantized nodes than
# `sensitivity_groups` is judged by layer (or contiguous runs of nodes), within `sensitivity_budget_s`.

# %%
fig = view.plot_sensitivity(result)
view.sensitivity_table(result)

# %% [markdown]
# ## Mixed precision and speed on this CPU

# %%
display(Markdown(view.mixed_precision_markdown(result)))
pd.DataFrame(result.speed_cpu.model_dump(exclude_unset=True) if result.speed_cpu else {}).T

# %% [markdown]
# ## Embedding tables: memory before and after

# %%
display(Markdown(view.tables_markdown(result)))

# %% [markdown]
# ## Calibration methods compared (`calib_compare`)

# %%
view.methods_table(result)

# %% [markdown]
# ## FP16 model (float32 inputs and outputs)

# %%
pd.DataFrame([result.fp16.model_dump(exclude_unset=True)], index=[result.fp16.fp16_onnx]) if result.fp16 else \
    Markdown(result.fp16_statement or "No FP16 model: fp16 is not in `precisions`.")
