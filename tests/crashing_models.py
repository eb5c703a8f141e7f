"""Model factories that kill the process in native code, loaded by tests as `tests.crashing_models:NAME`."""

import ctypes
import os
import signal
import sys
import time


def segfaults():
    """As a third-party runtime with a bug would: a read of address 0, after a line on stderr."""
    print("about to load the native runtime", file=sys.stderr, flush=True)
    time.sleep(1)  # lets the kernel forward that line before it dies
    ctypes.string_at(0)


def killed():
    """As the out-of-memory killer would: SIGKILL, which no handler sees."""
    os.kill(os.getpid(), signal.SIGKILL)


def segfaults_in_child():
    """tiny_convnet, whose forward crashes natively in a child process only (where engines are validated and
    benchmarked), as a runtime that breaks on one engine would; the reference in the parent runs."""
    import multiprocessing

    import torch

    from tests.user_models import tiny_convnet

    class Crashing(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tiny_convnet()

        def forward(self, x):
            if multiprocessing.parent_process() is not None:
                ctypes.string_at(0)
            return self.net(x)

    return Crashing()
