"""Host and device buffers the CUDA engines (PyTorch, TensorRT) share.

Page-locked host arrays, so copies to the device are direct; and LoadGen's samples kept in device
memory, as MLPerf harnesses do, with a batch gathered there by index, so only the indices cross PCIe.
Torch manages the memory for both backends (the project needs it anyway).
"""

from __future__ import annotations

import numpy as np


def pinned_array(shape: tuple[int, ...], dtype, keep: list) -> np.ndarray:
    """A page-locked host array; its tensor is appended to `keep`, which must live as long as the array."""
    import torch

    t = torch.zeros(shape, dtype=getattr(torch, np.dtype(dtype).name), pin_memory=True)
    keep.append(t)
    return t.numpy()


class DeviceSamples:
    """Samples in device memory (in the engine's dtype and layout) and index buffers for one batch."""

    def __init__(self, samples: np.ndarray, dtype, max_batch: int, channels_last: bool = False) -> None:
        import torch

        dev = torch.from_numpy(samples).to("cuda", dtype)
        self.samples = dev.contiguous(memory_format=torch.channels_last) if channels_last else dev
        # two host index buffers, used in turn: a pipelined engine writes the next batch's indices while the device
        # may not yet have copied the previous batch's. The CPU writes page-locked memory at once, so a buffer may
        # be rewritten only after the batch that used it two gathers ago has finished (the batcher's limit of
        # `inflight` = 2 unanswered batches guarantees it)
        self._idx_host = torch.zeros((2, max_batch), dtype=torch.int64, pin_memory=True)
        self._turn = 0
        self._idx_dev = torch.zeros(max_batch, dtype=torch.int64, device="cuda")

    def gather(self, idx: np.ndarray, out=None):
        """The samples at `idx` as one device batch (written into `out` when given), on the current stream."""
        import torch

        n = len(idx)
        self._turn ^= 1
        host = self._idx_host[self._turn, :n]
        host.copy_(torch.from_numpy(np.asarray(idx, dtype=np.int64)))
        index = self._idx_dev[:n]
        index.copy_(host, non_blocking=True)  # the device buffer is stream-ordered: the last gather has read it
        if out is not None:
            return torch.index_select(self.samples, 0, index, out=out)
        return self.samples.index_select(0, index)
