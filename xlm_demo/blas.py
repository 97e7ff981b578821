"""Float32 matrix products on the CPU through numpy's OpenBLAS, which reads weights at the memory's speed.

On the AMD EPYC CPUs measured here, torch's MKL runs a one-row product (every continued token) at about half the
memory bandwidth; OpenBLAS runs it at the bandwidth floor. The two libraries' thread pools spin against each other
on a small machine, so once OpenBLAS does the products, torch's own pool (the small element-wise work) gets one thread.
"""

from __future__ import annotations

import torch

_enabled = False


def enable() -> None:
    """Send this process's float32 CPU inference products to OpenBLAS, and give torch's pool one thread."""
    global _enabled
    _enabled = True
    torch.set_num_threads(1)


def handles(x: torch.Tensor) -> bool:
    """Whether OpenBLAS computes this input's product: float32, on the CPU, no gradients wanted."""
    return _enabled and x.dtype == torch.float32 and x.device.type == "cpu" and not torch.is_grad_enabled()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ weight.T + bias for x (..., in) and weight (out, in), as torch.nn.functional.linear."""
    rows = x.reshape(-1, x.shape[-1]).numpy()  # (N, in)
    matrix = weight.detach().numpy()  # (out, in)
    product = matrix @ rows[0] if len(rows) == 1 else rows @ matrix.T  # (out,): a GEMV; else (N, out)
    if bias is not None:
        product += bias.detach().numpy()  # in numpy: a torch call costs more than the add itself here
    return torch.from_numpy(product).view(*x.shape[:-1], weight.shape[0])
