"""A speech encoder shaped like the ones served for keyword spotting and speaker or intent embeddings:
transformers' Wav2Vec2Model built from a small config (no download: a 7-layer convolutional feature encoder
over raw 16 kHz audio, then 4 transformer layers of width 256), mean-pooled over time into one embedding per
utterance. Input: `audio` float32 [batch, 16000] (1 s); output: `embedding` float32 [batch, 256].

`make_files` writes what a user would bring: seeded weights (random init: no pretrained weights can be fetched
here) as safetensors, and calibration and validation utterances as .npz files: voiced sounds (a fundamental with
harmonics and a formant-like envelope, gliding in pitch), silence-padded, with noise at several levels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

RATE, SECONDS = 16_000, 1.0
SAMPLES = int(RATE * SECONDS)


def config():
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                          conv_dim=(256,) * 7, num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=16,
                          feat_extract_norm="group", do_stable_layer_norm=False)


def build():
    """The encoder (a `package.module:factory` for `model:`)."""
    import torch
    from torch import nn
    from transformers import Wav2Vec2Model

    class SpeechEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wav2vec2 = Wav2Vec2Model(config())

        def forward(self, audio: torch.Tensor) -> torch.Tensor:
            return self.wav2vec2(input_values=audio).last_hidden_state.mean(1)

    return SpeechEncoder().eval()


def utterances(n: int, seed: int = 0) -> np.ndarray:
    """`n` one-second clips: a voiced sound of 0.2–0.9 s (pitch 90–260 Hz gliding, harmonics under a formant-like
    envelope) at a random offset in silence, plus noise at 20–50 dB below it; zero mean, unit variance per clip,
    as Wav2Vec2's feature extractor normalizes."""
    rng = np.random.default_rng(seed)
    t = np.arange(SAMPLES) / RATE
    out = np.zeros((n, SAMPLES), np.float32)
    for i in range(n):
        length = rng.uniform(0.2, 0.9)
        start = rng.uniform(0, SECONDS - length)
        f0 = rng.uniform(90, 260) * (1 + rng.uniform(-0.15, 0.15) * (t - start))
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        formant = rng.uniform(400, 2500)
        voiced = sum(np.exp(-((k * f0.mean() - formant) / 800) ** 2) * np.sin(k * phase) for k in range(1, 16))
        gate = ((t >= start) & (t < start + length)).astype(np.float64)
        clip = voiced * gate + rng.normal(0, 10 ** (-rng.uniform(20, 50) / 20), SAMPLES)
        out[i] = ((clip - clip.mean()) / (clip.std() + 1e-7)).astype(np.float32)
    return out


def make_files(out: Path, n_calib: int = 128, n_val: int = 256) -> dict[str, Path]:
    """Weights (safetensors + .sha256), calib.npz and val.npz in `out`."""
    import torch
    from safetensors.torch import save_file

    from ..provenance import sha256_file

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1234)
    model = build()
    weights = out / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    weights.with_suffix(".safetensors.sha256").write_text(f"{sha256_file(weights)}  {weights.name}\n")
    np.savez(out / "calib.npz", audio=utterances(n_calib, seed=1))
    np.savez(out / "val.npz", audio=utterances(n_val, seed=2))
    return {"weights": weights, "calib": out / "calib.npz", "val": out / "val.npz"}


def main() -> None:
    ap = argparse.ArgumentParser(description="Write the speech encoder's weights and audio (what a user brings) "
                                             "for params/speech.yaml.")
    ap.add_argument("out", type=Path, help="folder to write weights.safetensors, calib.npz and val.npz into")
    args = ap.parse_args()
    for name, path in make_files(args.out).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
