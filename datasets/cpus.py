"""How many CPUs this process may use (its affinity set on Linux, else the machine's count), its
torch threads, and how its C allocator treats freed memory."""
from __future__ import annotations

from contextlib import contextmanager
import os
from typing import Iterator


def available_cpus() -> int:
    """CPUs available to this process (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` torch CPU threads (None: leave the count alone), then restore it."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# glibc's malloc hands blocks above its (dynamic) mmap threshold back to the kernel when they are
# freed, and trims the heap top above its trim threshold; a training step frees and re-allocates the
# same activation buffers every iteration, so each step page-faults them in again (measured: ~7,000
# minor faults per recognizer step at 32×128, 8-9 % of the CPU time spent in the kernel). Fixing
# both thresholds keeps freed blocks in the process for reuse. The environment variables (glibc's
# own spellings) reach processes started with "spawn", read when their malloc starts; mallopt
# sets this process.
MALLOC_KEEP_BYTES = 1 << 30
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(MALLOC_KEEP_BYTES), "MALLOC_TRIM_THRESHOLD_": str(MALLOC_KEEP_BYTES)}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3      # glibc's mallopt parameter numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (this process and the ones it starts); False where the
    C library is not glibc. Set HTRAUG_MALLOC=default to leave the allocator alone."""
    if os.environ.get("HTRAUG_MALLOC", "keep") == "default" or allocator_settings():
        return False                    # asked to leave it, or glibc already has the user's own settings
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # not glibc (macOS, musl without mallopt, Windows)
        return False
    if not (mallopt(_M_MMAP_THRESHOLD, MALLOC_KEEP_BYTES) and mallopt(_M_TRIM_THRESHOLD, MALLOC_KEEP_BYTES)):
        return False
    os.environ.update(MALLOC_ENV)
    return True


def allocator_settings() -> dict[str, str]:
    """glibc malloc settings this process's environment carries (empty: the allocator's defaults)."""
    return {name: os.environ[name] for name in MALLOC_ENV if name in os.environ}


AMP_MODES = ("off", "on", "auto")


def native_bf16_cpu() -> bool:
    """Does this CPU compute bf16 natively (AMX or AVX-512 BF16), as torch will run it? False under
    `ATEN_CPU_CAPABILITY=avx2` / `ONEDNN_MAX_CPU_ISA=AVX2` (an AVX2 machine emulated), where bf16
    would be emulated and slower than float32."""
    import torch

    cpu = getattr(torch, "cpu", None)
    try:
        hardware = cpu._is_amx_tile_supported() or cpu._is_avx512_bf16_supported()
        kernels = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):   # an older torch without these probes
        return False
    return bool(hardware and kernels and torch.backends.cpu.get_cpu_capability() not in ("DEFAULT", "NO AVX", "AVX2"))


def bf16_autocast(mode: str, device_type: str) -> bool:
    """Whether an `amp` mode (off, on, auto) runs bf16 autocast on a device of `device_type`: auto is
    on where bf16 is native (CUDA, or `native_bf16_cpu`)."""
    if mode not in AMP_MODES:
        raise ValueError(f"amp mode must be one of {', '.join(AMP_MODES)}, got {mode!r}")
    if mode == "auto":
        return device_type == "cuda" or (device_type == "cpu" and native_bf16_cpu())
    return mode == "on"
