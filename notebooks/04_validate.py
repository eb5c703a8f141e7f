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
# # 04 · Validate: accuracy against the FP32 reference
#
# Runs the validation split through every engine and compares it with PyTorch FP32: task accuracy
# where labels exist, top-1 agreement, output error, NaN/Inf. The gate decides which engines may be
# benchmarked and priced. Writes `validate/validate.json`.

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

# %%
from IPython.display import Markdown, display

from scaleproof import stages
from scaleproof.config import Params
from scaleproof.presentation import validate as view
from scaleproof.stages import validate

params = Params.from_namespace(globals())
validate.run(params)
result = stages.read_typed(params.run_path, "04_validate")

# %%
display(Markdown(f"Reference: {result.reference}. Metric: {result.metric_words} on output "
                 f"`{result.judged_output}`, {result.samples} samples. "
                 f"Gate: {result.gate}. Passed: {', '.join(result.passed) or 'none'}."))
view.validation_table(result)
