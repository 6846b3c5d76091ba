"""A tiny training run keeps the training code alive (a few steps on a sliver of
the shared data, then an ONNX export that onnxruntime can run)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import data_root, faceup_cli

pytest.importorskip("torch", reason="training needs the train extra")


@pytest.fixture(scope="module")
def root():
    r = data_root()
    if r is None:
        pytest.skip("../shared/data is not here; set FACEUP_DATA")
    return r


def test_quarter_turn_labels_follow_the_clockwise_convention():
    import torch
    from PIL import Image

    from faceup.train.orientation import quarter_turn_batch

    arr = np.zeros((8, 8, 3), dtype=np.uint8)
    arr[0, :, :] = 255  # a white top edge
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float().repeat(4, 1, 1, 1)
    turned = quarter_turn_batch(x, torch.arange(4))
    # label 1 = turned 90 degrees clockwise = PIL's ROTATE_270: the top edge goes right
    expected = np.asarray(Image.fromarray(arr).transpose(Image.Transpose.ROTATE_270))
    assert np.array_equal(turned[1].permute(1, 2, 0).numpy().astype(np.uint8), expected)
    assert turned[2][:, -1, :].mean() == 255  # 180: the top edge is at the bottom


def test_tiny_training_run_exports_a_working_onnx(root, tmp_path):
    import onnxruntime as ort

    res = faceup_cli("train", "--data", str(root), "--out", str(tmp_path / "run"), "--scale", "0.003",
                     "--max-steps", "2", "--batch", "8")
    assert res.returncode == 0, res.stdout + res.stderr
    onnx_path = tmp_path / "run" / "orientation.onnx"
    sess = ort.InferenceSession(str(onnx_path))
    logits = sess.run(None, {"image": np.zeros((3, 3, 128, 128), np.float32)})[0]
    assert logits.shape == (3, 4)
    meta = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert meta["temperature"] > 0 and 0.5 <= meta["min_confidence"] <= 1.0
    assert onnx_path.stat().st_size < 20 * 1024 * 1024


def test_held_out_parts_are_never_trained_on(root):
    from faceup import datasets
    from faceup.train import samples

    plans = samples.plan_training(root, scale=0.05)
    used = {p for plan in plans for p in plan.paths}
    held_out = {str(p) for p in datasets.crowds(root, "test") + datasets.scenes(root, "test") + datasets.lfw(root)}
    assert used and not (used & held_out)
    assert not any("/lfw/" in p or "/smilesmiled/" in p for p in used)
