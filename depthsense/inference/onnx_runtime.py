"""Inference runtimes: the PyTorch model itself, or its exported ONNX graph in ONNX Runtime.

``Predictor(runtime="onnxruntime")`` and ``depthsense-infer --runtime onnxruntime`` run a
learned model through :class:`OnnxRuntimeModel`: the model is exported once with
:func:`depthsense.inference.onnx_export.export_onnx` (one self-contained file, written
only after onnxruntime reproduced PyTorch) into the cache, never next to the user's
files, and reused by every later run with the same weights. The classical pre-fills
(OpenCV code) stay outside the graph: they are computed by the model's own
``compute_prefill`` and passed in as the graph's ``prefill`` input, exactly as the
PyTorch forward computes them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from depthsense.config import UsageError, cache_dir
from depthsense.inference.onnx_export import export_onnx

__all__ = ["RUNTIMES", "OnnxRuntimeModel", "check_runtime", "onnx_cache_path"]

RUNTIMES = ("torch", "onnxruntime")
"""Runtimes a :class:`~depthsense.inference.Predictor` can run a learned model with."""

_CACHE_FORMAT = 1  # bump when the export changes in a way the cached files must not survive


def check_runtime(runtime: str) -> str:
    """Return ``runtime`` if it is one of :data:`RUNTIMES`.

    Raises:
        UsageError: any other name (the message names the alternatives).
    """
    if runtime not in RUNTIMES:
        raise UsageError(f"--runtime {runtime!r}: unsupported; use one of {', '.join(RUNTIMES)}")
    return runtime


def onnx_cache_path(net: nn.Module) -> Path:
    """Where the exported graph of ``net`` is cached: ``<cache_dir>/onnx/<name>-<digest>.onnx``.

    The digest covers the model's name and configuration, every weight, the torch version
    and the cache format, so new weights (a replaced checkpoint) or a new exporter never
    reuse a stale file. See :func:`depthsense.config.cache_dir` (``$DEPTHSENSE_CACHE``).
    """
    h = hashlib.sha256()
    name = getattr(net, "name", type(net).__name__)
    cfg = getattr(net, "config", None)
    h.update(json.dumps([name, cfg, torch.__version__, _CACHE_FORMAT], sort_keys=True, default=str).encode())
    for key, value in sorted(net.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().to("cpu").contiguous().numpy().tobytes())
    return cache_dir() / "onnx" / f"{name}-{h.hexdigest()[:16]}.onnx"


class OnnxRuntimeModel:
    """A learned depth model run by ONNX Runtime on the CPU.

    Args:
        net: the PyTorch model (eval mode, CPU); it is exported (a NCHW copy) unless its
            graph is already cached, and kept for its classical pre-fills.
        threads: ONNX Runtime intra-op threads; default ``torch.get_num_threads()`` so
            both runtimes use the same cores.
        log: called with one line per stage of an export (which takes 10-60 s).

    Attributes:
        path: the cached ``.onnx`` file.
        exported: True when this instance exported it (False: read from the cache).
        inputs: the graph's input names (``sparse``, ``mask``[, ``rgb``][, ``prefill``]).

    Raises:
        UsageError: a classical model, a model with extra heads (the graph outputs depth
            only), or onnxruntime not installed.
        OnnxParityError: a fresh export does not reproduce PyTorch (nothing is cached).
    """

    def __init__(self, net: nn.Module, threads: int | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        name = getattr(net, "name", type(net).__name__)
        if not getattr(net, "learned", True):
            raise UsageError(f"--runtime onnxruntime: {name!r} is a classical model (OpenCV, no graph); "
                             "use --runtime torch")
        if getattr(net, "heads", ()):
            raise UsageError(f"--runtime onnxruntime: {name!r} has extra heads ({', '.join(net.heads)}) and the "
                             "exported graph outputs depth only; use --runtime torch")
        try:
            import onnxruntime as ort
        except ImportError:
            raise UsageError("--runtime onnxruntime needs onnx, onnxscript and onnxruntime: "
                             "pip install 'depthsense[onnx]'") from None
        self.net = net
        self.path = onnx_cache_path(net)
        self.exported = False
        if not self.path.is_file():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # export a plain NCHW copy (the caller's model may be channels_last)
            plain = copy.deepcopy(net).to(memory_format=torch.contiguous_format).eval()
            export_onnx(plain, self.path, log=log)
            self.exported = True
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, sparse: torch.Tensor | None, mask: torch.Tensor | None,
                 rgb: torch.Tensor | None = None) -> torch.Tensor:
        """Depth (B,1,H,W) metres from ``sparse``/``mask`` (B,1,H,W) and ``rgb`` (B,3,H,W), CPU tensors."""
        feed = {}
        for key in self.inputs:
            if key == "prefill":
                value = self.net.compute_prefill(sparse)
            else:
                value = {"sparse": sparse, "mask": mask, "rgb": rgb}[key]
            feed[key] = np.ascontiguousarray(value.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.session.run(["depth"], feed)[0])
