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
# # 01 · Export: PyTorch → ONNX
#
# Exports the model with a dynamic batch axis, checks the ONNX file, and measures its parity with
# PyTorch on real inputs. Writes `export/model.onnx` and `export/export.json`.

# %% tags=["parameters"]
run_dir: str = "../outputs/dev"  # folder the stages read and write (the runner sets it)
model: str = "zoo:digits-cnn"  # zoo:NAME or package.module:factory returning a torch.nn.Module
model_version: str = ""  # your label for this version of the model (e.g. v3, 2026-12): the ledger's trends and comparisons group runs by it; no effect on the run
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
opset: int = 18  # ONNX opset to export to
exporter: str = "dynamo"  # dynamo or torchscript
parity_atol: float = 0.0001  # largest |ONNX - PyTorch| output difference, relative to the output's own scale (max |PyTorch output|), for every output

# %%
import pandas as pd
from IPython.display import Markdown, display

from scaleproof import stages
from scaleproof.config import Params
from scaleproof.stages import export

params = Params.from_namespace(globals())
export.run(params)
result = stages.read_typed(params.run_path, "01_export")

# %%
display(Markdown(f"Exported `{result.model}` ({result.parameters:,} parameters, weights: {result.weights}) "
                 f"to ONNX opset {result.opset} with the {result.exporter} exporter: "
                 f"{result.onnx_nodes} nodes, input dims {result.onnx_input_dims}."
                 + (f" **Degenerate FP32 reference:** {result.reference_degenerate}." if result.reference_degenerate
                    else "")))
pd.DataFrame({name: p.model_dump(exclude_unset=True) for name, p in result.parity.outputs.items()}).T.rename_axis(
    "ONNX Runtime vs PyTorch, per output")
