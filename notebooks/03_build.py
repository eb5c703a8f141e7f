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
run_dir = "../outputs/dev"  # folder the stages read and write (the runner sets it)
model = "zoo:digits-cnn"  # zoo:NAME or package.module:factory returning a torch.nn.Module
input_shape = []  # input shape without the batch axis; needed for models outside the zoo
threads = 0  # CPU threads for inference (0: all usable cores)
backend = "auto"  # auto, onnxruntime, torch or tensorrt
precisions = ["fp32", "int8"]  # precisions to build (fp32, fp16, bf16, int8)
max_batch = 64  # largest batch an engine must accept
torch_modes = ["eager", "cuda_graph"]  # PyTorch CUDA engines to build: eager, cuda_graph, compile
compile_mode = "default"  # torch.compile mode (max-autotune takes minutes per shape)

# %%
import pandas as pd
from IPython.display import Markdown, display

from scaleproof import build
from scaleproof.config import Params

params = Params.from_namespace(globals())
result = build.run(params)

# %%
display(Markdown(f"Device `{result['device_slug']}`; backend asked: `{result['backend_requested']}`; "
                 f"baseline: `{result['baseline']}`."))
display(pd.DataFrame(result["engines"]).set_index("name")[["backend", "precision", "mode", "source", "build_seconds", "size_bytes"]])
if result["skipped"]:
    display(Markdown("**Not built here:**"), pd.DataFrame(result["skipped"]))
