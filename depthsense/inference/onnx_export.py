"""ONNX export of a learned depth model, checked against PyTorch with onnxruntime.

``depthsense-infer --export-onnx OUT.onnx --checkpoint RUN_DIR/best.pt`` calls
:func:`export_onnx`. The file written is self-contained (weights inside, no external-data
file next to it) and only written when onnxruntime reproduces the PyTorch output at
every checked size; the stages are reported through ``log`` because the exporter works
for tens of seconds on a CPU.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from depthsense.config import UsageError
from depthsense.errors import DepthFileError, DepthSenseError
from depthsense.io import atomic_output, os_error_in, remove_stale_temps

__all__ = ["OnnxExport", "OnnxParityError", "export_onnx", "check_onnx_destination"]


class OnnxParityError(DepthSenseError):
    """The exported ONNX model does not reproduce the PyTorch output within tolerance."""


@dataclass
class OnnxExport:
    """Result of :func:`export_onnx`.

    Attributes:
        path: the ``.onnx`` file written.
        exporter: ``"dynamo"`` (``torch.onnx.export(dynamo=True)``) or ``"torchscript"``.
        inputs: ONNX input names in order (``sparse``, ``mask``[, ``rgb``] or ``rgb``),
            each (B,C,H,W) float32 with dynamic B, H, W; output ``depth`` (B,1,H,W).
        checks: ``[((H, W), max_abs_diff, max_abs_torch_output), ...]`` one per size.
        atol, rtol: tolerance of the check ``max|onnx - torch| <= atol + rtol*max|torch|``.
        fallback_reason: why the dynamo exporter was not used (``auto`` mode), else None.
    """

    path: Path
    exporter: str
    inputs: list[str]
    checks: list[tuple[tuple[int, int], float, float]]
    atol: float
    rtol: float
    fallback_reason: str | None = None


def export_onnx(
    model: nn.Module | Any,
    path: str | os.PathLike,
    exporter: str = "auto",
    check_sizes: Sequence[tuple[int, int]] = ((64, 208), (45, 77)),
    atol: float = 1e-4,
    rtol: float = 1e-4,
    log: Callable[[str], None] | None = None,
) -> OnnxExport:
    """Export a learned model to ONNX with dynamic batch, height and width, and verify it.

    The models pad internally without shape-dependent Python branches, so one graph
    serves every size; a model that has such a branch fails the check below. After export, onnxruntime runs the file on synthetic samples of every size in
    ``check_sizes`` (the second default is odd on purpose) and must match the PyTorch
    model within ``atol + rtol*max|torch|`` per sample (the rtol term allows for float32
    rounding, which grows with the magnitude of the depths; for a trained model, depths
    <= 100 m, the bound is <= 10 mm: float32 rounding in a deep net reaches ~2e-5 of the depth). The file
    is written atomically and only if the check passes.

    Args:
        model: a :class:`~depthsense.inference.Predictor` (its ``model``) or a DepthSense
            model (learned).
        path: destination ``.onnx``.
        exporter: ``"auto"`` (dynamo, falling back to TorchScript on failure),
            ``"dynamo"`` or ``"torchscript"``.
        check_sizes: (H,W) sizes to check (each >= 16).
        log: called with one line per stage (export, check), which take seconds each.
    Returns:
        :class:`OnnxExport` with the max abs differences.

    The file is self-contained: the weights are stored inside it (no external-data
    file next to it; these models are a few MB, far below ONNX's 2 GB limit), so it can
    be copied alone.

    Raises:
        UsageError: a classical model (no ONNX graph: OpenCV code), unknown exporter,
            onnx/onnxruntime not installed, or ``path`` is a directory (checked first).
        OnnxParityError: onnxruntime output differs from PyTorch beyond tolerance.
        DepthFileError: the destination cannot be written.
    """
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise UsageError(f"--onnx-exporter {exporter!r}: expected auto, dynamo or torchscript.")
    path = check_onnx_destination(path)
    say = log or (lambda _msg: None)
    # A Predictor is taken by what it holds (importing it here would close an import cycle:
    # the Predictor's onnxruntime runtime exports through this module).
    net = model if isinstance(model, nn.Module) else model.model
    if getattr(model, "channels_last", False):  # a Predictor's model: export the plain NCHW graph
        net = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
    name = getattr(net, "name", type(net).__name__)
    if not getattr(net, "learned", True):
        raise UsageError(
            f"{name!r} is a classical model (OpenCV morphology, no weights) and cannot be exported "
            "to ONNX; export a trained checkpoint (--export-onnx OUT.onnx --checkpoint RUN_DIR/best.pt)."
        )
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError(
            "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'depthsense[onnx]'."
        ) from None
    if any(h < 16 or w < 16 for h, w in check_sizes) or not check_sizes:
        raise UsageError(f"check_sizes {list(check_sizes)}: need at least one size, each side >= 16.")
    if any(t.device.type != "cpu" for t in list(net.parameters()) + list(net.buffers())):
        net = copy.deepcopy(net).to("cpu")  # export and compare on the CPU; leave the caller's model alone
    net.eval()
    inputs = (["sparse", "mask"] if net.needs_sparse else []) + (["rgb"] if net.needs_rgb else [])
    if getattr(net, "prefill", ()):
        # The classical pre-fills are OpenCV code outside the graph: they become an input.
        inputs.append("prefill")
        say(f"{name} takes its classical fills ({'+'.join(net.prefill)}, metres) as the extra input 'prefill' "
            "(depthsense.models.classical.ip_basic_fill / nearest_fill of the sparse input)")
    wrapper = _ExportWrapper(net, inputs).eval()
    samples = [_sample_inputs(inputs, h, w, seed, net) for seed, (h, w) in enumerate(check_sizes)]
    path = Path(path)
    fallback = None
    for stale in remove_stale_temps(path.parent, [path.name]):  # of an export that was killed
        say(f"note: removed {stale}, a temporary file of an interrupted export")
    with atomic_output(path) as tmp, _no_stray_files(tmp):
        used = exporter
        if exporter in ("auto", "dynamo"):
            say(f"exporting {name} with the dynamo exporter (torch.export; typically 10-60 s on a CPU) ...")
            try:
                # Batch 2: an example of batch 1 would make torch.export specialise B to 1.
                _export_dynamo(wrapper, [torch.cat([t, t]) for t in samples[0]], inputs, tmp)
                used = "dynamo"
            except Exception as exc:  # noqa: BLE001 - any exporter failure -> try the other one
                disk = os_error_in(exc)
                if disk is not None and disk.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise disk from None  # a full disk fails the other exporter too: say so at once
                if exporter == "dynamo":
                    raise
                fallback = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
                used = "torchscript"
        if used == "torchscript":
            say(f"exporting {name} with the TorchScript exporter ...")
            _export_torchscript(wrapper, samples[0], inputs, tmp)
        _embed_weights(tmp)
        sizes = ", ".join(f"{h}x{w}" for h, w in check_sizes)
        say(f"checking the ONNX graph with onnxruntime against PyTorch at {sizes} ...")
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        checks = []
        failures = []
        for sample in samples:
            with torch.inference_mode():
                named = dict(zip(inputs, sample))
                ref = wrapper(*sample).numpy()
            size = tuple(int(v) for v in sample[0].shape[-2:])
            try:
                got = session.run(None, {k: v.numpy() for k, v in zip(inputs, sample)})[0]
            except Exception as exc:  # onnxruntime raises its own types; a graph frozen at one size fails here
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                failures.append(f"{size[0]}x{size[1]}: onnxruntime failed to run the graph ({first})")
                checks.append((size, float("inf"), float(np.abs(ref).max())))
                continue
            if got.shape != ref.shape:
                failures.append(f"{size[0]}x{size[1]}: onnxruntime output shape {got.shape} != torch {ref.shape}")
                checks.append((size, float("inf"), float(np.abs(ref).max())))
                continue
            diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
            checks.append((size, float(diff.max()), float(np.abs(ref).max())))
            # float32 rounding grows with the size of the activations, so the relative term
            # uses the sample's largest depth, not each pixel's own value.
            if not diff.max() <= atol + rtol * float(np.abs(ref).max()):
                failures.append(f"{size[0]}x{size[1]}: max |onnx - torch| = {diff.max():.3g}")
        if failures:
            raise OnnxParityError(
                f"{path}: onnxruntime does not reproduce {name} ({'; '.join(failures)}; tolerance "
                f"{atol:g} + {rtol:g}*max|depth|); nothing was written. Try --onnx-exporter "
                f"{'torchscript' if used == 'dynamo' else 'dynamo'}."
            )
        del session
    return OnnxExport(path=path, exporter=used, inputs=inputs, checks=checks, atol=atol, rtol=rtol, fallback_reason=fallback)


# --------------------------------------------------------------------------- helpers


def check_onnx_destination(path: str | os.PathLike) -> Path:
    """Check an ``--export-onnx`` destination before any work.

    Raises:
        UsageError: ``path`` is a directory.
        DepthFileError: its folder does not exist or is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--export-onnx {path}: is a directory; pass a file name such as {path / 'model.onnx'}.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DepthFileError(f"--export-onnx {path}: folder {folder} does not exist; create it or choose another path.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DepthFileError(f"--export-onnx {path}: folder {folder} is not writable; choose another path.")
    return path


def _embed_weights(path: Path) -> None:
    """Make the ONNX file self-contained: weights inside, no external-data file.

    ``torch.onnx.export(dynamo=True)`` may store initialisers in ``<file>.data``; its name
    would be our temporary file's, so after the rename the model would point at a
    hidden, orphaned file.
    """
    import onnx
    from onnx.external_data_helper import uses_external_data

    proto = onnx.load(str(path), load_external_data=False)
    external = [t for t in proto.graph.initializer if uses_external_data(t)]
    if not external:
        return
    locations = {e.value for t in external for e in t.external_data if e.key == "location"}
    proto = onnx.load(str(path))  # reads the external data into the tensors
    onnx.save_model(proto, str(path), save_as_external_data=False)
    for location in locations:
        with contextlib.suppress(OSError):
            (path.parent / location).unlink()


@contextlib.contextmanager
def _no_stray_files(tmp: Path) -> Iterator[None]:
    # Whatever an exporter writes next to the temporary file (external data) goes with it.
    before = set(tmp.parent.iterdir())
    try:
        yield
    finally:
        for extra in set(tmp.parent.iterdir()) - before:
            if extra.name.startswith(tmp.name) and extra != tmp:
                with contextlib.suppress(OSError):
                    extra.unlink()


class _ExportWrapper(nn.Module):
    """Positional ONNX inputs -> the model's ``forward(sparse, mask, rgb)``.

    The models pad to the size they need without shape-dependent Python branches
    (``depthsense.models._common.pad_to_multiple``), so one graph serves every input size.
    """

    def __init__(self, model: nn.Module, inputs: list[str]) -> None:
        super().__init__()
        self.model = model
        self.inputs = list(inputs)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.inputs, args))
        extra = {"prefill": named["prefill"]} if "prefill" in named else {}
        return self.model(named.get("sparse"), named.get("mask"), named.get("rgb"), **extra)


def _sample_inputs(inputs: list[str], h: int, w: int, seed: int, net: nn.Module | None = None) -> list[torch.Tensor]:
    """A realistic (1,C,h,w) sample: a synthetic street frame cropped to h x w."""
    from depthsense.data.synthetic import render_frame

    frame = render_frame(seed, 0, max(h, 32), max(w, 32))
    sparse = torch.from_numpy(np.ascontiguousarray(frame.sparse[:h, :w]))[None, None]
    rgb = torch.from_numpy(np.ascontiguousarray(frame.rgb[:h, :w].transpose(2, 0, 1)))[None]
    tensors = {"sparse": sparse, "mask": (sparse > 0).float(), "rgb": rgb}
    if "prefill" in inputs:
        tensors["prefill"] = net.compute_prefill(sparse)
    return [tensors[k] for k in inputs]


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    # The exporters log optional-dependency notes (e.g. "torchvision is not installed")
    # and deprecation warnings that say nothing about the user's model.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export_dynamo(wrapper: nn.Module, sample: list[torch.Tensor], inputs: list[str], dest: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=16, max=8192)
    width = torch.export.Dim("width", min=16, max=8192)
    dims = tuple({0: batch, 2: height, 3: width} for _ in inputs)
    with _quiet_export():
        torch.onnx.export(
            wrapper,
            tuple(sample),
            str(dest),
            dynamo=True,
            dynamic_shapes=(dims,),  # one entry per positional parameter: *args
            input_names=inputs,
            output_names=["depth"],
            verbose=False,
            external_data=False,  # one self-contained file (the models are small)
        )


def _export_torchscript(wrapper: nn.Module, sample: list[torch.Tensor], inputs: list[str], dest: Path) -> None:
    axes = {k: {0: "batch", 2: "height", 3: "width"} for k in inputs + ["depth"]}
    with _quiet_export():
        torch.onnx.export(
            wrapper,
            tuple(sample),
            str(dest),
            dynamo=False,
            input_names=inputs,
            output_names=["depth"],
            dynamic_axes=axes,
            opset_version=17,
        )
