"""The accuracy gate: an engine's outputs against the FP32 reference, with the metric the run chose.

Metrics: top-1 against labels, top-1 agreement with FP32, cosine similarity to FP32 (embeddings),
ROC AUC and log loss of a one-wide score against 0/1 labels (click-through models), output error alone, or a
user function. Whatever the metric, every engine must also keep the judged
output's error within `max_output_err`, produce only finite values, and the reference itself must be
able to judge anything (a degenerate reference is reported as such, never as an accuracy result).
Argmax is used only where it means something: a (N, C) output with C >= 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import Metric, Params
from .errors import ParamsError
from .stages.export import degenerate, has_classes, parity_all


def chosen_metric(params: Params, ref: np.ndarray, has_labels: bool) -> Metric:
    """The metric of the run: `auto` resolves to top1 with labels (where argmax means something),
    agreement for the class scores of a one-input classifier, cosine otherwise; an explicit choice that
    cannot apply is refused."""
    m = params.metric
    if m is Metric.auto:
        if one_wide(ref) and has_labels:  # a click/conversion probability against 0/1 labels
            return Metric.auc
        if has_classes(ref) and has_labels:
            return Metric.top1
        # argmax agreement for classifiers given by input_shape (or the zoo); a model with declared inputs
        # may return embeddings, whose argmax means nothing: cosine is the safe default there
        return Metric.agreement if has_classes(ref) and not params.inputs else Metric.cosine
    if m in (Metric.top1, Metric.agreement) and not has_classes(ref):
        raise ParamsError(f"metric={m.value} takes the argmax of a (N, C) output with C >= 2, but the judged output "
                          f"has shape {ref.shape}; use metric=cosine or error")
    if m is Metric.auc and (not one_wide(ref) or not has_labels):
        raise ParamsError(f"metric=auc judges a one-wide output (N,) or (N, 1), a score per sample, against 0/1 "
                          f"labels; the judged output has shape {ref.shape}"
                          + ("" if has_labels else " and val_data has no labels"))
    if m is Metric.top1 and not has_labels:
        raise ParamsError("metric=top1 needs labels: give val_data with a labels array, or use metric=agreement")
    return m


def one_wide(ref: np.ndarray) -> bool:
    """One score per sample: (N,) or (N, 1)."""
    return ref.ndim == 1 or (ref.ndim == 2 and ref.shape[1] == 1)


def auc_logloss(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """ROC AUC and log loss of one score per sample against 0/1 labels. Scores outside [0, 1] are logits:
    the log loss is taken on their sigmoid (AUC, a ranking, is the same either way)."""
    from sklearn.metrics import log_loss, roc_auc_score

    s = scores.reshape(-1).astype(np.float64)
    p = s if s.min() >= 0 and s.max() <= 1 else 1.0 / (1.0 + np.exp(-s))
    labels = np.asarray(y).reshape(-1)
    if set(np.unique(labels).tolist()) - {0, 1} or len(np.unique(labels)) < 2:
        raise ParamsError(f"metric=auc needs labels of both classes 0 and 1; val_data's labels hold "
                          f"{sorted(np.unique(labels).tolist())[:10]}")
    eps = 1e-7
    return float(roc_auc_score(labels, s)), float(log_loss(labels, np.clip(p, eps, 1 - eps), labels=[0, 1]))


def cosine_rows(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Cosine similarity of each sample's flattened output to the reference's; for one value per sample
    (where a per-sample cosine is only a sign), of the whole column."""
    a = ref.reshape(len(ref), -1).astype(np.float64)
    b = out.reshape(len(out), -1).astype(np.float64)
    if a.shape[1] == 1:
        a, b = a.T, b.T
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(1) / den, 0.0)


def user_metric(spec: str):
    from .zoo import resolve_factory

    fn = resolve_factory(spec, what="metric_fn")
    if not callable(fn):
        raise ParamsError(f"metric_fn {spec!r} is not callable")
    return fn


def user_score(spec: str, out: np.ndarray, y: np.ndarray | None, ref: np.ndarray) -> float:
    """metric_fn(judged output, labels, FP32 reference) as a float; a failing or non-scalar function is
    a parameter error naming it."""
    try:
        return float(user_metric(spec)(out, y, ref))
    except ParamsError:
        raise
    except Exception as e:
        raise ParamsError(f"metric_fn {spec} failed on outputs of shape {out.shape} ({type(e).__name__}: {e}); it must "
                          "return one number, higher is better") from e


def judged_index(params: Params, names: list[str]) -> int:
    if not params.metric_output:
        return 0
    if params.metric_output not in names:
        raise ParamsError(f"metric_output {params.metric_output!r} is not an output; outputs are {names}")
    return names.index(params.metric_output)


def judge(refs: list[np.ndarray], outs: list[np.ndarray], y: np.ndarray | None, params: Params,
          names: list[str]) -> dict[str, Any]:
    """Every output's parity, the metric on the judged output, and the gate's verdict with its reason."""
    k = judged_index(params, names)
    ref, out = refs[k], outs[k]
    row: dict[str, Any] = parity_all(refs, outs, names)
    judged = row["outputs"][names[k]]  # the metric's figures are the judged output's, never another's
    row.update({key: judged[key] for key in ("max_abs_err", "mean_abs_err", "top1_agreement") if key in judged})
    row["judged_output"] = names[k]
    row["nonfinite_outputs"] = int(sum((~np.isfinite(o)).sum() for o in outs))
    metric = chosen_metric(params, ref, y is not None)
    row["metric"] = metric.value
    reasons = []
    bad_ref = degenerate(ref)
    if bad_ref:
        row["reference_degenerate"] = bad_ref
        reasons.append(f"the FP32 reference is degenerate ({bad_ref}): it cannot judge accuracy")
    if row["nonfinite_outputs"]:
        reasons.append(f"{row['nonfinite_outputs']} NaN/Inf outputs")
    elif not bad_ref and (bad_out := degenerate(out)):  # e.g. an INT8 model that answers 0.0 to everything
        reasons.append(f"the engine's outputs are degenerate ({bad_out}) while FP32's are not")
    err = judged["mean_rel_err"]
    row["output_err"] = err
    if not err <= params.max_output_err:
        reasons.append(f"output error {err:.3g} (mean |engine - FP32| / FP32's mean deviation between samples) > "
                       f"max_output_err {params.max_output_err}")
    cost = 100.0 * err
    if metric is Metric.top1:
        row["top1"] = float((out.argmax(1) == y).mean())
        row["ref_top1"] = float((ref.argmax(1) == y).mean())
        row["top1_delta_pts"] = round(100 * (row["top1"] - row["ref_top1"]), 4)
        cost = max(0.0, -row["top1_delta_pts"])
        chance = 1.0 / ref.shape[1]
        if row["ref_top1"] <= 1.5 * chance:  # labels that do not fit the outputs make any drop look small
            reasons.append(f"the FP32 reference's top-1 {row['ref_top1']:.2%} is at chance (1/{ref.shape[1]}): the "
                           "labels do not fit this output; check val_data's labels or use metric=agreement/cosine")
        if -row["top1_delta_pts"] > params.max_top1_drop:
            reasons.append(f"top-1 drops {-row['top1_delta_pts']:.2f} pt > max_top1_drop {params.max_top1_drop}")
    elif metric is Metric.agreement:
        cost = 100.0 * (1.0 - row["top1_agreement"])
        if row["top1_agreement"] < params.min_agreement:
            reasons.append(f"top-1 agreement {row['top1_agreement']:.4f} < min_agreement {params.min_agreement}")
    elif metric is Metric.cosine:
        cos = cosine_rows(ref, out)
        row.update(cosine_mean=float(cos.mean()), cosine_min=float(cos.min()))
        cost = 100.0 * (1.0 - row["cosine_mean"])
        if row["cosine_mean"] < params.min_cosine:
            reasons.append(f"mean cosine to FP32 {row['cosine_mean']:.4f} < min_cosine {params.min_cosine}")
    elif metric is Metric.auc:
        row["auc"], row["logloss"] = auc_logloss(out, y)
        row["ref_auc"], row["ref_logloss"] = auc_logloss(ref, y)
        row["auc_delta_pts"] = round(100 * (row["auc"] - row["ref_auc"]), 4)
        cost = max(0.0, -row["auc_delta_pts"])
        if row["ref_auc"] <= 0.5:
            reasons.append(f"the FP32 reference's AUC {row['ref_auc']:.4f} is no better than chance: the labels do not "
                           "fit this output; check val_data's labels")
        if -row["auc_delta_pts"] > params.max_auc_drop:
            reasons.append(f"AUC drops {-row['auc_delta_pts']:.3f} pt > max_auc_drop {params.max_auc_drop}")
    elif metric is Metric.user:
        row["score"], row["ref_score"] = user_score(params.metric_fn, out, y, ref), user_score(params.metric_fn, ref, y, ref)
        drop = row["ref_score"] - row["score"]
        cost = 100.0 * max(0.0, drop) if np.isfinite(drop) else 100.0
        if not drop <= params.max_metric_drop:  # NaN fails too
            reasons.append(f"{params.metric_fn} drops {drop:.4g} > max_metric_drop {params.max_metric_drop}")
    row["accuracy_cost_pts"] = round(cost, 4)
    row["passed"] = not reasons
    row["reason"] = "; ".join(reasons) or "within gate"
    return row


def gate(params: Params, metric: Metric) -> dict[str, Any]:
    """The bounds an engine must keep, as the report prints them."""
    g: dict[str, Any] = {"max_output_err": params.max_output_err}
    if metric is Metric.top1:
        g["max_top1_drop_pts"] = params.max_top1_drop
    elif metric is Metric.agreement:
        g["min_agreement"] = params.min_agreement
    elif metric is Metric.cosine:
        g["min_cosine"] = params.min_cosine
    elif metric is Metric.auc:
        g["max_auc_drop_pts"] = params.max_auc_drop
    elif metric is Metric.user:
        g.update(metric_fn=params.metric_fn, max_metric_drop=params.max_metric_drop)
    return g


METRIC_WORDS = {
    Metric.top1: "top-1 accuracy vs labels",
    Metric.agreement: "top-1 agreement with FP32 (the data has no labels)",
    Metric.cosine: "cosine similarity of each sample's output to FP32",
    Metric.error: "output error vs FP32 (mean |engine - FP32| / FP32's mean deviation between samples)",
    Metric.user: "the user's metric function, engine vs FP32",
    Metric.auc: "ROC AUC (and log loss) of the one-wide score against 0/1 labels, engine vs FP32",
}


def describe(row: dict[str, Any]) -> str:
    """The metric's value in words: 'top-1 -0.40 pt', 'mean cosine to FP32 0.9962', …"""
    m = row.get("metric")
    if m == "top1":
        return f"top-1 {row['top1_delta_pts']:+.2f} pt"
    if m == "agreement":
        return f"top-1 agreement with FP32 {100 * row['top1_agreement']:.2f}%"
    if m == "cosine":
        return f"mean cosine to FP32 {row['cosine_mean']:.4f}"
    if m == "auc":
        return (f"AUC {row['auc']:.4f} ({row['auc_delta_pts']:+.2f} pt vs FP32 {row['ref_auc']:.4f}), "
                f"log loss {row['logloss']:.4f} (FP32 {row['ref_logloss']:.4f})")
    if m == "user":
        return f"score {row['score']:.4g} (FP32 {row['ref_score']:.4g})"
    return f"output error {row.get('output_err', float('nan')):.3g}"


def accuracy_rank(row: dict[str, Any]) -> tuple[float, float]:
    """An engine's accuracy against FP32 as a sort key, larger is more accurate: the run's metric first (top-1,
    agreement, cosine, closeness of the user's score to FP32's), then the judged output's error (smaller is better).
    A figure the metric did not produce ranks last."""
    def num(v: Any) -> float:
        return float(v) if isinstance(v, int | float) and v == v else float("-inf")

    m = row.get("metric")
    first = {"top1": num(row.get("top1")), "agreement": num(row.get("top1_agreement")),
             "cosine": num(row.get("cosine_mean")), "auc": num(row.get("auc"))}.get(m, 0.0)
    if m == "user" and row.get("score") is not None and row.get("ref_score") is not None:
        first = -abs(row["score"] - row["ref_score"])
    err = row.get("output_err")
    return first, -err if isinstance(err, int | float) and err == err else float("-inf")
