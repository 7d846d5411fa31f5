"""Timing and memory readings that hold on a GPU (kernels run asynchronously) and on the CPU.

Shared by bench/internvl_gpu.py and bench/internvl_decode.py.
"""

from __future__ import annotations

import time

import torch


def reset_peak(device: torch.device) -> None:
    """Wait for queued work and start a fresh peak-memory reading."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def elapsed(start: float, device: torch.device) -> float:
    """Seconds since `start` (a perf_counter reading), queued device work included."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def peak_gib(device: torch.device) -> float | None:
    """Peak device memory since the last reset_peak; None on the CPU."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
