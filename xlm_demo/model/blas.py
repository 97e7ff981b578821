"""Float32 matrix products on the CPU through numpy's OpenBLAS, where it is faster than torch's own.

On the AMD EPYC CPUs measured here, torch's MKL runs a one-row product (every continued token) at about half the
memory bandwidth and OpenBLAS at the bandwidth floor; on the Intel Xeons, MKL is the faster. `faster_products`
times one token's step both ways when an engine loads, and `route` switches only that engine's model: each of its
linear layers, nothing else in the process.

OpenBLAS's worker threads spin for a while after each product, so torch's own pool, which runs the small
element-wise work between products, gets one thread while an engine computes; with both libraries at two threads
on two cores the pools fight and a token took 110-300 ms. `OneTorchThread` limits that to the calling thread and
to the duration of the call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import numpy
import torch
from threadpoolctl import ThreadpoolController
from torch import nn

TIMED_RUNS = 5  # of one token's step, each way, after a first run that warms caches and thread pools
# A product of a few rows (a keystroke's new tokens, a position run again) runs block by block with the weight on
# the left: OpenBLAS then streams the weight once instead of packing all of it, 2-3x faster for the 265 MB output
# projection at 2-16 rows on the AMD EPYC measured here (15 ms against 37 for 2 rows). Beyond 64 rows the plain
# product is as fast.
FEW_ROWS = 64
BLOCK_ROWS = 2048  # of the weight (8 MB at 1024 inputs): small enough that each block's packing stays in cache


def route(model: nn.Module, openblas: bool = True) -> None:
    """Send this model's float32 CPU inference products to OpenBLAS, or back to torch (its `openblas` flags)."""
    for module in model.modules():
        if hasattr(module, "openblas"):
            module.openblas = openblas


def faster_products(model: nn.Module, step: Callable[[], object]) -> tuple[str, dict[str, float]]:
    """ "openblas" or "torch", whichever runs `step` (one token through `model`) faster here; and each one's seconds.

    The two are timed in turns, so that a burst of other work on the machine slows both alike."""
    one_torch_thread = OneTorchThread()
    times: dict[str, list[float]] = {"torch": [], "openblas": []}
    for turn in range(TIMED_RUNS + 1):  # the first turn warms caches and thread pools, untimed
        for name in times:
            route(model, openblas=name == "openblas")
            with one_torch_thread() if name == "openblas" else nullcontext():
                start = time.perf_counter()
                step()
                if turn:
                    times[name].append(time.perf_counter() - start)
    route(model, openblas=False)
    seconds = {name: min(values) for name, values in times.items()}
    return min(seconds, key=seconds.get), seconds


def handles(x: torch.Tensor) -> bool:
    """Whether OpenBLAS can compute this input's product: float32, on the CPU, no gradients wanted."""
    return x.dtype == torch.float32 and x.device.type == "cpu" and not torch.is_grad_enabled()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ weight.T + bias for x (..., in) and weight (out, in), as torch.nn.functional.linear."""
    rows = x.reshape(-1, x.shape[-1]).numpy()  # (N, in)
    matrix = weight.detach().numpy()  # (out, in)
    if len(rows) == 1:
        product = matrix @ rows[0]  # (out,): a GEMV
    elif len(rows) <= FEW_ROWS:
        product = numpy.empty((len(rows), len(matrix)), dtype=rows.dtype)  # (N, out)
        for start in range(0, len(matrix), BLOCK_ROWS):
            product[:, start : start + BLOCK_ROWS] = (matrix[start : start + BLOCK_ROWS] @ rows.T).T
    else:
        product = rows @ matrix.T  # (N, out)
    if bias is not None:
        product += bias.detach().numpy()  # in numpy: a torch call costs more than the add itself here
    return torch.from_numpy(product).view(*x.shape[:-1], weight.shape[0])


class OneTorchThread:
    """A context in which torch's OpenMP pool runs one thread, for the calling thread only, restored on exit; entered
    again inside itself, it changes nothing (a continued token's step enters it several times)."""

    def __init__(self):
        self.openmp = ThreadpoolController().select(user_api="openmp")
        self.inside = threading.local()  # .active: this thread is inside the context

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if getattr(self.inside, "active", False):
            yield
            return
        # torch sizes a thread's pool on its first parallel call; do that now, or it would undo the limit.
        torch.get_num_threads()
        with self.openmp.limit(limits=1):
            self.inside.active = True
            try:
                yield
            finally:
                self.inside.active = False
