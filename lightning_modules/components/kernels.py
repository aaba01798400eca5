"""The compiled CPU kernels of the nets (``csrc/fused_gru.cpp``): loading, and the autograd
glue of the group de-mean.

One extension holds the fused GRU recurrence (used by ``fused_gru.py``), the group de-mean
and the series decomposition (used by ``layers.py``). It is compiled on first use with
``torch.utils.cpp_extension`` (g++ and ninja; about 30 s, once per machine, cached under
``~/.cache/torch_extensions`` or ``$TORCH_EXTENSIONS_DIR``). :func:`load_extension` returns
None where it cannot be built (the reason in :func:`extension_error`) or when
``DEEPFACTOR_FUSED_GRU=0``; every caller then runs its torch ops instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
import threading
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("csrc") / "fused_gru.cpp"
_lock = threading.Lock()
_ext = None
_ext_error: str | None = None


def _cpu_tag() -> str:
    """A short hash of this CPU's model and flags: the kernel is built with -march=native, so
    a build directory shared between machines must not mix their builds."""
    text = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")):
                    text += line
                if line.startswith("flags"):
                    break
    except OSError:
        pass
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def load_extension(verbose: bool = False):
    """Compile (first time on this machine) and load the kernel; returns the module, or None
    if it cannot be built here (the reason is logged once and kept in :func:`extension_error`).
    ``DEEPFACTOR_FUSED_GRU=0`` disables it."""
    global _ext, _ext_error
    if _ext is not None or _ext_error is not None:
        return _ext
    with _lock:
        if _ext is not None or _ext_error is not None:
            return _ext
        if os.environ.get("DEEPFACTOR_FUSED_GRU", "1") == "0":
            _ext_error = "disabled by DEEPFACTOR_FUSED_GRU=0"
            return None
        try:
            from torch.utils.cpp_extension import load

            venv_bin = os.path.dirname(sys.executable)  # pip's ninja, venv not activated
            if shutil.which("ninja") is None and os.path.exists(os.path.join(venv_bin, "ninja")):
                os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")

            log.info("loading the compiled CPU kernels (built once per machine, ~30 s)")
            _ext = load(
                name=f"deepfactor_fused_gru_{_cpu_tag()}",
                sources=[str(_SOURCE)],
                extra_cflags=["-O3", "-march=native", "-fopenmp", "-fno-math-errno",
                              "-fno-trapping-math"],
                extra_ldflags=["-fopenmp"],
                verbose=verbose,
            )
        except Exception as exc:  # no compiler, no ninja, build error: fall back to torch
            _ext_error = f"{type(exc).__name__}: {exc}"
            log.warning("compiled CPU kernels unavailable, torch ops (nn.GRU, ...) are used "
                        "instead (%s)",
                        _ext_error.splitlines()[0][:300])
    return _ext


def extension_error() -> str | None:
    """Why the kernel could not be loaded (None if it loaded or was not tried)."""
    return _ext_error


class GroupDemean(torch.autograd.Function):
    """``h - mean of h over its group`` [N, D] with every row weighted equally, by the
    compiled kernel: a symmetric projection, so the gradient is the same de-mean of the
    incoming gradient. Apply only where :func:`load_extension` is not None."""

    @staticmethod
    def forward(ctx, flat: Tensor, groups: Tensor, n_groups: int) -> Tensor:
        ctx.save_for_backward(groups)
        ctx.n_groups = n_groups
        return load_extension().group_demean(flat.contiguous(), groups, n_groups, False)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (groups,) = ctx.saved_tensors
        return (load_extension().group_demean(grad.contiguous(), groups, ctx.n_groups, False),
                None, None)


__all__ = ["GroupDemean", "extension_error", "load_extension"]
