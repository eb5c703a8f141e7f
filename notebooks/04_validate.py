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
run_dir = "../outputs/dev"  # folder the stages read and write (the runner sets it)
model = "zoo:digits-cnn"  # zoo:NAME or package.module:factory returning a torch.nn.Module
input_shape = []  # input shape without the batch axis; needed for models outside the zoo
seed = 0  # seed for data selection and synthetic inputs
threads = 0  # CPU threads for inference (0: all usable cores)
max_top1_drop = 1.0  # largest top-1 drop vs FP32, in points, that passes the gate
min_agreement = 0.97  # smallest top-1 agreement with FP32 that passes the gate
val_samples = 0  # validation samples to use (0: the whole split)

# %%
from IPython.display import Markdown, display

from scaleproof import report, validate
from scaleproof.config import Params

params = Params.from_namespace(globals())
result = validate.run(params)

# %%
display(Markdown(f"Reference: {result['reference']}. Metric: {result['metric']}, {result['samples']} samples. "
                 f"Gate: {result['gate']}. Passed: {', '.join(result['passed']) or 'none'}."))
report.validation_table(result)
