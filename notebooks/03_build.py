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
# # 03 · Build: engines for this machine
#
# Builds every engine this machine can run into the per-device store `build/engines/<device>/`,
# each with a sidecar tying it to its source model, backend version and device. The PyTorch FP32
# eager engine is always built: it is the baseline. Writes `build/build.json`.

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
threads: int = 0  # CPU threads for inference (0: all usable cores)
backend: str = "auto"  # auto, onnxruntime, torch or tensorrt
precisions: list = ['fp32', 'int8']  # precisions to build (fp32, fp16, bf16, int8; on a CUDA GPU through torchao also fp8 and int8-weight-only)
max_batch: int = 64  # largest batch an engine must accept
batch_sizes: list = [1, 8, 32]  # batch sizes to time
static_batch: int = 1  # batch of the static comparison: fixed size, no queue window
torch_modes: list = ['eager', 'cuda_graph']  # PyTorch CUDA engines to build: eager, cuda_graph, compile
compile_mode: str = "default"  # torch.compile mode (max-autotune takes minutes per shape)
compile_freezing: bool = False  # torch.compile with Inductor freezing: weights become constants, so batch norms fold into convolutions (faster kernels, a longer first compile)
compile_cache_dir: str = ""  # folder of torch.compile caches per GPU type, torch version, model and mode (empty: ~/.cache/scaleproof/compile)
onnx_gpu: bool = False  # also build ONNX Runtime CUDA engines of the exported model (fp32, fp16 in precisions) beside the others; needs onnxruntime-gpu (the gpu extra)
lowp_keep_layers: list = []  # Linear layers (module names, as build.json lists them) the torchao engines (int8, fp8, int8-weight-only) leave in bfloat16
batcher_max_batch: int = 32  # largest batch the dynamic batcher forms
trt_workspace_mb: int = 4096  # TensorRT builder workspace limit in MiB
trt_min_batch: int = 1  # smallest batch of the TensorRT optimization profile
trt_opt_batch: int = 0  # batch TensorRT tunes kernels for (0: batcher_max_batch)
trt_opt_level: int = 3  # TensorRT builder optimization level (0 fastest build to 5 most tuning)
trt_hardware_compat: str = "none"  # TensorRT hardware compatibility: none, ampere_plus or same_compute_capability
trt_version_compatible: bool = False  # build TensorRT engines that later TensorRT versions of the same major load
trt_weak_typing_fallback: bool = True  # on TensorRT 10.x, retry a failed strongly typed build with the FP16/INT8 builder flags (recorded)
trt_cuda_graph: bool = True  # capture one CUDA graph per batch bucket around TensorRT's execute_async_v3
trt_timing_cache_dir: str = ""  # folder of TensorRT timing caches per GPU type and version (empty: the engine store of the GPU)

# %%
import pandas as pd
from IPython.display import Markdown, display

from scaleproof import stages
from scaleproof.config import Params
from scaleproof.presentation import build as view
from scaleproof.stages import build

params = Params.from_namespace(globals())
build.run(params)
result = stages.read_typed(params.run_path, "03_build")

# %%
display(Markdown(f"Device `{result.device_slug}`; backend asked: `{result.backend_requested}`; "
                 f"baseline: `{result.baseline}`."))
display(pd.DataFrame([e.model_dump() for e in result.engines]).set_index("name")[
    ["backend", "precision", "mode", "source", "build_seconds", "size_bytes"]])
if result.skipped:
    display(Markdown("**Not built here:**"), pd.DataFrame([s.model_dump() for s in result.skipped]))

# %% [markdown]
# ## TensorRT: how precision reached each engine, and what fusion did
#
# Layers from the engine inspector (detailed profiling verbosity) against the ONNX node count: fewer
# engine layers means fewer kernel launches, measured here rather than assumed.

# %%
view.tensorrt_table(result)

# %% [markdown]
# ## torchao: what INT8 and FP8 quantized, and their share of the work
#
# torchao quantizes Linear layers; convolutions and attention's own matrix products stay bfloat16, so the share
# of FLOPs in low precision bounds what the precision can gain.

# %%
view.low_precision_table(result)
