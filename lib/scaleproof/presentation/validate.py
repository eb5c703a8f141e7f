"""Stage 04's presentation: each engine's accuracy against the FP32 reference."""

from __future__ import annotations

import pandas as pd

from ..results import ValidateResult


def validation_table(validated: ValidateResult) -> pd.DataFrame:
    cols = ["engine", "metric", "top1", "top1_delta_pts", "top1_agreement", "cosine_mean", "auc", "auc_delta_pts",
            "logloss", "output_err", "max_rel_err", "nonfinite_outputs", "passed", "reason"]
    return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in validated.engines])
