"""Convert MediaPipe's selfie segmentation model (Apache-2.0, the file
`mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite` shipped in the
PyPI package mediapipe==0.10.21) to src/faceup/models/weights/segmentation.onnx,
and record its sha256 in registry.json.

    python -m venv /tmp/conv && /tmp/conv/bin/pip install tflite onnx numpy
    /tmp/conv/bin/python tools/convert_selfie_segmentation.py --tflite selfie_segmentation.tflite
    # compare with MediaPipe itself (it pins protobuf < 5, so in its own venv):
    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.21 onnxruntime pillow
    /tmp/mp/bin/python tools/convert_selfie_segmentation.py --check-only PICTURE ...

tflite2onnx cannot convert this model: it uses MediaPipe's custom operator
Convolution2DTransposeBias (a transposed convolution plus a bias). The graph is
small (11 kinds of operators), so it is translated here operator by operator,
NHWC to NCHW: the ONNX model takes 1x3x256x256 RGB in [0, 1] and answers
1x1x256x256 person probabilities. With --check, the ONNX mask is compared with
MediaPipe's own SelfieSegmentation on the pictures given (mean absolute
difference of the masks and IoU of the person areas).

`--pose --out OUT.onnx` translates the pose landmark model of the same package
(modules/pose_landmark/pose_landmark_full.tflite, whose segmentation head is made
for whole bodies; three more operators: PAD, MAX_POOL_2D, RESHAPE), and `--tflite
.../selfie_segmentation_landscape.tflite --out OUT.onnx` the landscape selfie
model (one more: MEAN): the candidates tried for the person mask and not kept
(README, "Background replacement").

`--face-mesh` translates the face mesh of the same package
(modules/face_landmark/face_landmark.tflite; one more operator, PRELU) into
src/faceup/models/weights/face_mesh.onnx (or --out): `--fine` reads the eye line from
its eye outlines (docs/any-angle.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
from importlib import util
from pathlib import Path

import numpy as np

try:  # converting needs tflite and onnx; --check-only needs mediapipe, which pins an older protobuf
    import onnx
    import tflite
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    onnx = tflite = None

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "faceup" / "models" / "weights"
SOURCE = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
POSE_SOURCE = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
MESH_SOURCE = "mediapipe/modules/face_landmark/face_landmark.tflite"

if tflite is not None:
    OPS = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    NP_TYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
                tflite.TensorType.INT32: np.int32}
    ACTIVATIONS = {tflite.ActivationFunctionType.NONE: None, tflite.ActivationFunctionType.RELU: "Relu",
                   tflite.ActivationFunctionType.RELU6: "relu6"}


class Converter:
    def __init__(self, buf: bytes) -> None:
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        self.graph = self.model.Subgraphs(0)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> value (float16 dequantized)
        self.count = 0
        self.after: onnx.NodeProto | None = None  # a fused activation waiting for its op

    # -- tensors -------------------------------------------------------------
    def name(self, i: int) -> str:
        return f"t{i}"

    def const(self, i: int) -> np.ndarray | None:
        if i in self.consts:
            return self.consts[i]
        t = self.graph.Tensors(i)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data is None or len(data) == 0:
            return None
        arr = np.frombuffer(data.tobytes(), dtype=NP_TYPES[t.Type()]).reshape(t.ShapeAsNumpy())
        return arr

    def init(self, arr: np.ndarray, hint: str = "c") -> str:
        self.count += 1
        name = f"{hint}{self.count}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def operand(self, i: int) -> str:
        """A tensor as an ONNX input: constants laid out NCHW (NHWC rank 4 ->
        transposed, per-channel vectors -> C x 1 x 1)."""
        c = self.const(i)
        if c is None:
            return self.name(i)
        c = c.astype(np.float32) if c.dtype == np.float16 else c
        if c.ndim == 4:
            c = c.transpose(0, 3, 1, 2)
        elif c.ndim == 1 and c.size > 1:
            c = c.reshape(-1, 1, 1)
        return self.init(c)

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        if self.after is not None:
            self.nodes.append(self.after)
            self.after = None

    def activation(self, fused: int, out: str) -> str:
        """The node's fused activation, emitted after the next node (the op itself);
        answer the name the op writes to."""
        act = ACTIVATIONS[fused]
        if act is None:
            return out
        raw = out + "_pre"
        if act == "Relu":
            self.after = helper.make_node("Relu", [raw], [out])
        else:
            self.after = helper.make_node("Clip", [raw, self.init(np.float32(0)), self.init(np.float32(6))], [out])
        return raw

    @staticmethod
    def options(op, cls):
        opt = cls()
        table = op.BuiltinOptions()
        opt.Init(table.Bytes, table.Pos)
        return opt

    @staticmethod
    def pads(padding: int, in_hw, kernel, stride, dilation=(1, 1)) -> list[int]:
        """TensorFlow's SAME/VALID as explicit ONNX pads (SAME puts the odd pixel
        at the bottom/right)."""
        if padding == tflite.Padding.VALID:
            return [0, 0, 0, 0]
        before, after = [], []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return before + after

    def shape(self, i: int) -> list[int]:
        return [int(v) for v in self.graph.Tensors(i).ShapeAsNumpy()]

    # -- operators -----------------------------------------------------------
    def convert(self, output_names: list[str | None] | None = None,
                graph_name: str = "selfie_segmentation") -> onnx.ModelProto:
        """The ONNX model; `output_names` names the graph's outputs in order (None: left out)."""
        g = self.graph
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            kind = OPS.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
            ins = [op.Inputs(j) for j in range(op.InputsLength())]
            outs = [op.Outputs(j) for j in range(op.OutputsLength())]
            out = self.name(outs[0])
            if kind == "DEQUANTIZE":
                src = self.const(ins[0])
                assert src is not None, "DEQUANTIZE of a computed tensor"
                self.consts[outs[0]] = src.astype(np.float32)
            elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w = self.const(ins[1]).astype(np.float32)
                b = self.const(ins[2]).astype(np.float32) if len(ins) > 2 and ins[2] >= 0 else None
                in_shape = self.shape(ins[0])
                if kind == "CONV_2D":
                    o = self.options(op, tflite.Conv2DOptions)
                    weight, group = w.transpose(0, 3, 1, 2), 1  # OHWI -> OIHW
                else:
                    o = self.options(op, tflite.DepthwiseConv2DOptions)
                    weight, group = w.transpose(3, 0, 1, 2), in_shape[3]  # 1HWC -> C1HW
                kernel = weight.shape[2:]
                stride = (o.StrideH(), o.StrideW())
                dil = (o.DilationHFactor(), o.DilationWFactor())
                target = self.activation(o.FusedActivationFunction(), out)
                inputs = [self.name(ins[0]), self.init(weight, "w")] + ([self.init(b, "b")] if b is not None else [])
                self.node("Conv", inputs, [target], kernel_shape=list(kernel), strides=list(stride),
                          dilations=list(dil), group=group,
                          pads=self.pads(o.Padding(), in_shape[1:3], kernel, stride, dil))
            elif kind in ("ADD", "MUL"):
                o = self.options(op, tflite.AddOptions if kind == "ADD" else tflite.MulOptions)
                target = self.activation(o.FusedActivationFunction(), out)
                self.node("Add" if kind == "ADD" else "Mul", [self.operand(ins[0]), self.operand(ins[1])], [target])
            elif kind == "RELU":
                self.node("Relu", [self.name(ins[0])], [out])
            elif kind == "PRELU":  # the face mesh: one slope per channel
                slope = self.const(ins[1]).astype(np.float32).reshape(-1, 1, 1)
                self.node("PRelu", [self.name(ins[0]), self.init(slope, "slope")], [out])
            elif kind == "HARD_SWISH":
                self.node("HardSwish", [self.name(ins[0])], [out])
            elif kind == "LOGISTIC":
                self.node("Sigmoid", [self.name(ins[0])], [out])
            elif kind == "AVERAGE_POOL_2D":
                o = self.options(op, tflite.Pool2DOptions)
                kernel = (o.FilterHeight(), o.FilterWidth())
                stride = (o.StrideH(), o.StrideW())
                target = self.activation(o.FusedActivationFunction(), out)
                self.node("AveragePool", [self.name(ins[0])], [target], kernel_shape=list(kernel),
                          strides=list(stride), pads=self.pads(o.Padding(), self.shape(ins[0])[1:3], kernel, stride),
                          count_include_pad=0)
            elif kind == "RESIZE_BILINEAR":
                o = self.options(op, tflite.ResizeBilinearOptions)
                size = self.const(ins[1]).astype(np.int64)
                n_c = self.shape(ins[0])
                sizes = np.array([n_c[0], n_c[3], size[0], size[1]], dtype=np.int64)
                mode = "align_corners" if o.AlignCorners() else ("half_pixel" if o.HalfPixelCenters() else "asymmetric")
                self.node("Resize", [self.name(ins[0]), "", "", self.init(sizes, "size")], [out], mode="linear",
                          coordinate_transformation_mode=mode)
            elif kind == "PAD":
                pad = self.const(ins[1]).astype(np.int64)  # NHWC x (before, after)
                order = [0, 3, 1, 2]
                pads = [int(pad[d, 0]) for d in order] + [int(pad[d, 1]) for d in order]
                self.node("Pad", [self.name(ins[0]), self.init(np.array(pads, np.int64), "pad")], [out])
            elif kind == "MAX_POOL_2D":
                o = self.options(op, tflite.Pool2DOptions)
                kernel = (o.FilterHeight(), o.FilterWidth())
                stride = (o.StrideH(), o.StrideW())
                target = self.activation(o.FusedActivationFunction(), out)
                self.node("MaxPool", [self.name(ins[0])], [target], kernel_shape=list(kernel), strides=list(stride),
                          pads=self.pads(o.Padding(), self.shape(ins[0])[1:3], kernel, stride))
            elif kind == "MEAN":  # global average over the spatial axes (the landscape model)
                axes = sorted(int(a) for a in self.const(ins[1]).ravel())
                assert axes == [1, 2], axes
                self.node("ReduceMean", [self.name(ins[0])], [out], axes=[2, 3], keepdims=1)
            elif kind == "RESHAPE":
                # only [1, 1, 1, C] -> [1, C] (a head's output): the same order in NCHW
                assert self.shape(ins[0])[1:3] == [1, 1], self.shape(ins[0])
                self.node("Reshape", [self.name(ins[0]), self.init(np.array(self.shape(outs[0]), np.int64), "shape")],
                          [out])
            elif kind == "CUSTOM" and code.CustomCode() == b"Convolution2DTransposeBias":
                # MediaPipe's custom options are a TfLiteTransposeConvParams struct:
                # padding (1 same, 2 valid), stride_width, stride_height
                padding, sw, sh = struct.unpack("<3i", op.CustomOptionsAsNumpy().tobytes()[:12])
                w = self.const(ins[1]).astype(np.float32)  # O H W I
                b = self.const(ins[2]).astype(np.float32)
                in_hw = self.shape(ins[0])[1:3]
                out_hw = self.shape(outs[0])[1:3]
                kernel = w.shape[1:3]
                total = [(i - 1) * s + k - o for i, s, k, o in zip(in_hw, (sh, sw), kernel, out_hw)]
                assert all(t >= 0 for t in total), (padding, total)
                pads = [t // 2 for t in total] + [t - t // 2 for t in total]
                self.node("ConvTranspose", [self.name(ins[0]), self.init(w.transpose(3, 0, 1, 2), "w"), self.init(b, "b")],
                          [out], kernel_shape=list(kernel), strides=[sh, sw], pads=pads)
            else:
                raise ValueError(f"this converter does not translate the operator {kind} "
                                 f"{code.CustomCode() or ''}; it knows those of the selfie and pose models")
        gin = g.Inputs(0)
        n, h, w, c = self.shape(gin)
        names = output_names or ["mask"]
        rename = {self.name(gin): "image"}
        outputs = []
        for k, nm in enumerate(names):
            if nm is None:
                continue
            t = g.Outputs(k)
            rename[self.name(t)] = nm
            shp = self.shape(t)
            outputs.append(helper.make_tensor_value_info(
                nm, TensorProto.FLOAT, [shp[0], shp[3], shp[1], shp[2]] if len(shp) == 4 else shp))
        for nd in self.nodes:
            for names_ in (nd.input, nd.output):
                for j, x in enumerate(names_):
                    names_[j] = rename.get(x, x)
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, c, h, w])], outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="faceup tools/convert_selfie_segmentation.py")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def check(onnx_path: Path, pictures: list[str]) -> None:
    """The converted mask against MediaPipe's own graph on the same pictures."""
    import mediapipe as mp
    import onnxruntime as ort
    from PIL import Image

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        for p in pictures:
            img = Image.open(p).convert("RGB")
            ref = seg.process(np.asarray(img)).segmentation_mask
            x = np.asarray(img.resize((256, 256), Image.Resampling.BILINEAR), np.float32).transpose(2, 0, 1)[None] / 255
            m = sess.run(None, {"image": x})[0][0, 0]
            ours = np.asarray(Image.fromarray(m).resize(img.size, Image.Resampling.BILINEAR))
            inter = ((ours > 0.5) & (ref > 0.5)).sum()
            union = ((ours > 0.5) | (ref > 0.5)).sum()
            print(f"{p}: mean |ours - mediapipe| {np.abs(ours - ref).mean():.4f}, "
                  f"IoU of the person masks {inter / max(union, 1):.4f}, person share {(ref > 0.5).mean():.3f}")


def tflite_path(given: str | None, source: str) -> Path:
    """The .tflite file given, or `source` inside the installed mediapipe package."""
    if given:
        return Path(given)
    spec = util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        raise SystemExit("install mediapipe==0.10.21 first, or pass --tflite")
    return Path(spec.origin).parent.parent / source


def face_mesh(args) -> None:
    """Convert MediaPipe's face mesh; without --out, install it with its sha256."""
    tfl = tflite_path(args.tflite, MESH_SOURCE)
    model = Converter(tfl.read_bytes()).convert(["landmarks", "face_score"], "face_mesh")
    dest = Path(args.out) if args.out else WEIGHTS / "face_mesh.onnx"
    onnx.save(model, dest)
    print(dest, dest.stat().st_size)
    if args.out:
        return
    reg_path = WEIGHTS / "registry.json"
    reg = json.loads(reg_path.read_text())
    reg["face_mesh"] = {"file": dest.name, "sha256": hashlib.sha256(dest.read_bytes()).hexdigest(), "meta": {
        "source": "MediaPipe face mesh (face_landmark.tflite, 468 points; Apache-2.0) from PyPI mediapipe==0.10.21, "
                  "converted by tools/convert_selfie_segmentation.py --face-mesh", "input_size": 192}}
    reg_path.write_text(json.dumps(reg, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tflite", help="the .tflite file (default: from the installed mediapipe package)")
    ap.add_argument("--check-only", nargs="*", default=None, metavar="PICTURE",
                    help="do not convert: compare the shipped ONNX with MediaPipe on these pictures")
    ap.add_argument("--out", metavar="OUT.onnx",
                    help="write a candidate here instead of installing it (registry untouched): e.g. the landscape "
                         "model, --tflite .../selfie_segmentation_landscape.tflite (1x3x144x256 in)")
    ap.add_argument("--pose", action="store_true",
                    help="the pose landmark model (full) instead (needs --out): the candidate tried for whole bodies "
                         "(README, Background replacement); outputs landmarks [1, 195], presence [1, 1] and mask "
                         "logits [1, 1, 256, 256] of a person-centred 256 px square in [0, 1]")
    ap.add_argument("--face-mesh", action="store_true",
                    help="the face mesh (face_landmark.tflite) instead: 1x3x192x192 RGB in [0, 1] -> landmarks "
                         "[1, 1404, 1, 1] (468 x, y, z in input pixels) and a face score logit [1, 1, 1, 1]; "
                         "with --out a candidate, else installed as face_mesh.onnx")
    args = ap.parse_args()
    if args.face_mesh:
        return face_mesh(args)
    dest = WEIGHTS / "segmentation.onnx"
    if args.check_only is not None:
        check(dest, args.check_only)
        return
    tfl = tflite_path(args.tflite, POSE_SOURCE if args.pose else SOURCE)
    if args.pose and not args.out:
        raise SystemExit("--pose needs --out: the pose model is a candidate, not installed")
    if args.pose:
        model = Converter(tfl.read_bytes()).convert(["landmarks", "presence", "mask", None, None], "pose_landmark")
    else:
        model = Converter(tfl.read_bytes()).convert()
    if args.out:
        onnx.save(model, args.out)
        print(args.out, Path(args.out).stat().st_size)
        return
    onnx.save(model, dest)
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    reg_path = WEIGHTS / "registry.json"
    reg = json.loads(reg_path.read_text())
    reg["segmentation"] = {"file": dest.name, "sha256": digest, "meta": {
        "source": "MediaPipe selfie segmentation (general, 256x256; Apache-2.0) from PyPI mediapipe==0.10.21, "
                  "converted by tools/convert_selfie_segmentation.py", "input_size": 256}}
    reg_path.write_text(json.dumps(reg, indent=2) + "\n")
    print(dest, dest.stat().st_size, digest)


if __name__ == "__main__":
    main()
