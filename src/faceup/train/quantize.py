"""int8 quantization of a trained ONNX model with onnxruntime's own tools (static,
QDQ, per-channel weights): the activation ranges come from batches of the model's
training or validation inputs, never from held-out data. Used by
tools/quantize_orientation.py and tools/quantize_models.py."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process


class _Batches(CalibrationDataReader):
    def __init__(self, batches: Iterable[np.ndarray], input_name: str):
        self.batches = iter({input_name: b} for b in batches)

    def get_next(self):
        return next(self.batches, None)


@contextmanager
def _prepared(src: Path, dst: Path) -> Iterator[Path]:
    """`src` after onnxruntime's pre-processing (shape inference, folding), in a
    file beside `dst` that is removed afterwards."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre))
    try:
        yield pre
    finally:
        pre.unlink(missing_ok=True)


def quantize_int8(src: Path, dst: Path, batches: Iterable[np.ndarray]) -> Path:
    """Write the int8 version of the float model `src` to `dst`; `batches` are NCHW
    float32 inputs as the model takes them at run time."""
    name = ort.InferenceSession(str(src)).get_inputs()[0].name
    with _prepared(src, dst) as pre:
        quantize_static(str(pre), str(dst), _Batches(batches, name), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


def quantize_dynamic_int8(src: Path, dst: Path) -> Path:
    """Write the dynamically quantized version of `src` to `dst`: int8 weights
    (per channel), activations quantized at run time from their own range (no
    calibration inputs; the fallback when static ranges cost too much accuracy)."""
    with _prepared(src, dst) as pre:
        quantize_dynamic(str(pre), str(dst), per_channel=True, weight_type=QuantType.QInt8)
    return dst
