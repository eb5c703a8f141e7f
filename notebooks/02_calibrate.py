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
# # 02 · Calibrate: INT8 Q/DQ model
#
# Post-training quantization with ONNX Runtime's tooling into an explicit Q/DQ ONNX model, from a
# seeded calibration set disjoint from the validation split. Writes `calibrate/model.int8.onnx` and
# `calibrate/calibrate.json`.

# %% tags=["parameters"]
run_dir = "../outputs/dev"  # folder the stages read and write (the runner sets it)
model = "zoo:digits-cnn"  # zoo:NAME or package.module:factory returning a torch.nn.Module
input_shape = []  # input shape without the batch axis; needed for models outside the zoo
seed = 0  # seed for data selection and synthetic inputs
calib_method = "minmax"  # minmax, entropy or percentile
calib_samples = 256  # number of calibration samples (disjoint from validation)
per_channel = True  # per-channel weight scales

# %%
import pandas as pd
from IPython.display import Markdown, display

from scaleproof import quantize
from scaleproof.config import Params

params = Params.from_namespace(globals())
result = quantize.run(params)

# %%
display(Markdown(f"Calibrated with **{result['calib_method']}** on {result['calib_samples']} samples "
                 f"(data sha256 `{result['calib_data_sha256'][:16]}…`), {result['format']}, "
                 f"per-channel weights: {result['per_channel']}; quantizer {result['quantizer']} "
                 f"{result['quantizer_version']}."))
pd.DataFrame([result["qdq"]], index=[result["int8_onnx"]])
