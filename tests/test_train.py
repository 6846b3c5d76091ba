"""A tiny training run keeps the training code alive (a few steps on a sliver of
the shared data, then an ONNX export that onnxruntime can run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import data_root, faceup_cli
from faceup import datasets

#: A slow file: left out of `make test-fast` (pytest -m "not slow").
pytestmark = pytest.mark.slow

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
    watched(tmp_path / "run", "val_accuracy")


def watched(run: Path, metric: str) -> list[dict]:
    """A run folder holds the metrics per epoch (CSV and JSON), the curves, and both checkpoints."""
    from PIL import Image

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["metric"] == metric and metrics["epochs"]
    assert all(metric in row and "train_loss" in row for row in metrics["epochs"])
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,step,train_loss")
    assert Image.open(run / "curves.png").width > 300
    assert (run / "last.pt").exists() and (run / "best.pt").exists()
    return metrics["epochs"]


def test_held_out_parts_are_never_trained_on(root):
    from faceup import datasets
    from faceup.train import samples

    plans = samples.plan_training(root, scale=0.05, hard=2000)
    assert {plan.kind for plan in plans} >= {"hard-small", "hard-circle", "hard-cover", "hard-painted"}
    used = {p for plan in plans for p in plan.paths}
    held_out = {str(p) for p in datasets.crowds(root, "test") + datasets.scenes(root, "test") + datasets.lfw(root)
                + datasets.people(root)}
    assert used and not (used & held_out)
    assert not any("/lfw/" in p or "/smilesmiled/" in p or "/segmentation/" in p for p in used)
    # the packs of people are trained on, each without its validation part
    val = {str(p) for p in datasets.frames68(root, "val")} | {str(p) for p, _ in datasets.gender_web(root, "val")}
    assert any("/frames68/" in p for p in used) and any("/gender_web/" in p for p in used)
    assert not (used & val)
    assert len(datasets.people(root)) >= 100


def test_tiny_angle_training_run(root, tmp_path):
    import onnxruntime as ort

    res = faceup_cli("train", "--task", "angle", str(root / "scenes" / "intel" / "sea"), "--out", str(tmp_path / "a"),
                     "--scale", "0.01", "--max-steps", "2", "--batch", "8")
    assert res.returncode == 0, res.stdout + res.stderr
    sess = ort.InferenceSession(str(tmp_path / "a" / "angle.onnx"))
    assert sess.run(None, {"image": np.zeros((2, 3, 128, 128), np.float32)})[0].shape == (2, 72)
    watched(tmp_path / "a", "val_angle_error")
    res = faceup_cli("train", "--task", "angle", str(root / "scenes" / "intel" / "sea"), "--out", str(tmp_path / "b"),
                     "--scale", "0.01", "--max-steps", "1", "--batch", "8", "--samples", "inner",
                     "--samples-per-picture", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = json.loads((tmp_path / "b" / "angle_config.json").read_text())
    assert cfg["samples"] == "inner" and cfg["samples_per_picture"] == 2
    res = faceup_cli("train", "--task", "angle", str(root / "scenes" / "intel" / "sea"), "--out", str(tmp_path / "c"),
                     "--samples", "corners")
    assert res.returncode == 2 and "--samples must be one of" in res.stderr


def test_angle_learns_from_more_parts_with_their_own_sample_counts(root, tmp_path):
    """--also (tried for the angle model, README): the crowd photos' training part adds
    its own samples; validation stays the scenes'; a bad entry or a folder is refused."""
    from faceup.errors import BadOptionError
    from faceup.train.options import parse_also

    assert parse_also("crowds:14, frames68:3") == (("crowds", 14), ("frames68", 3))
    for bad in ("crowds", "crowds:0", "lfw:2", "crowds:x"):
        with pytest.raises(BadOptionError, match="NAME:SAMPLES"):
            parse_also(bad)
    res = faceup_cli("train", "--task", "angle", "--data", str(root), "--out", str(tmp_path / "a"), "--scale", "0.01",
                     "--max-steps", "1", "--batch", "8", "--samples-per-picture", "1", "--also", "crowds:2")
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = json.loads((tmp_path / "a" / "angle_config.json").read_text())
    assert cfg["also"] == ["crowds:2"]
    n = len(datasets.scenes(root, "train")) // 100
    extra = np.load(next((tmp_path / "a").glob("angle_128_crowds*x2_s0.npz")))
    assert len(extra["y"]) == 2 * n and f"angle samples: {n + 2 * n} from {n} pictures + crowds:2" in res.stdout
    assert not set(cfg["val_paths"]) & {str(p) for p in datasets.crowds(root, "train")}
    for args, says in ((["--also", "lfw:2"], "NAME:SAMPLES"), (["--also", "crowds:2", str(root / "scenes")], "not a folder"),
                       (["--task", "orientation", "--also", "crowds:2"], "--also is for --task angle")):
        args = args if "--task" in args else ["--task", "angle", *args]
        res = faceup_cli("train", *args, "--data", str(root), "--out", str(tmp_path / "b"))
        assert res.returncode == 2 and says in res.stderr.replace("\n", " "), res.stderr


@pytest.mark.parametrize("task", ["smile", "agegender"])
def test_tiny_face_attribute_training_runs(root, tmp_path, task):
    res = faceup_cli("train", "--task", task, "--data", str(root), "--out", str(tmp_path / task),
                     "--scale", "0.001", "--max-steps", "2", "--batch", "8")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / task / f"{task}.onnx").stat().st_size > 1000
    epochs = watched(tmp_path / task, "val_accuracy" if task == "smile" else "val_gender_accuracy")
    # every source of the task is trained on by default, and each gets its own validation figure
    sources = ("smilesmiled", "genki4k_train", "fer2013") if task == "smile" else ("utkface", "gender_web")
    assert json.loads((tmp_path / task / f"{task}_config.json").read_text())["sources"] == list(sources)
    assert all(f"val_accuracy_{s}" in epochs[-1] for s in sources), epochs[-1]


def test_gender_is_learnt_from_every_source_and_age_only_where_known(root):
    from faceup.train.attributes import agegender_data

    xs, ages, genders, strata = agegender_data(root, "train", 10)
    assert xs.shape[1:] == (96, 96, 3) and len(xs) == len(ages) == len(genders) == len(strata) >= 16
    web = strata // 2 == 1
    assert web.any() and (~web).any()
    assert np.isnan(ages[web]).all() and not np.isnan(ages[~web]).any()  # the web faces carry no age
    assert (strata % 2 == genders).all()
    with pytest.raises(ValueError, match="unknown gender source"):
        agegender_data(root, "train", 4, ("celeba",))


def test_a_run_killed_mid_way_resumes_from_its_last_epoch(root, tmp_path):
    import signal
    import subprocess
    import time

    run = tmp_path / "smile"
    cmd = [str(Path(sys.executable).parent / "faceup"), "train", "--task", "smile", "--data", str(root),
           "--out", str(run), "--scale", "0.002", "--batch", "8", "--epochs", "8", "--patience", "8"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (run / "metrics.json").exists() and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(json.loads((run / "metrics.json").read_text())["epochs"])
    assert 1 <= done < 8
    res = faceup_cli(*cmd[1:], "--resume")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"(epoch {done})" in res.stdout  # went on from there, not from the start
    epochs = watched(run, "val_accuracy")
    assert [row["epoch"] for row in epochs] == list(range(1, len(epochs) + 1)) and len(epochs) >= 8
    assert epochs[done - 1]["step"] < epochs[done]["step"]  # no epoch done twice


def test_training_stops_early_and_keeps_the_best_epoch(tmp_path):
    import torch

    from faceup.train.watch import Watch

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    gen = torch.Generator()
    watch = Watch(tmp_path, "val_accuracy", True, steps_per_epoch=1, patience=2)
    figures = iter([0.5, 0.7, 0.65, 0.6, 0.9])
    stopped_at, best_weight = None, None
    for epoch in range(1, 6):
        with torch.no_grad():
            model.weight.fill_(epoch)
        if epoch == 2:
            best_weight = model.weight.clone()
        if watch.epoch_end(epoch, 5, model, opt, sched, gen, lambda: {"val_accuracy": next(figures)}):
            stopped_at = epoch
            break
    assert stopped_at == 4  # two epochs without beating 0.7
    watch.load_best(model)
    assert torch.equal(model.weight, best_weight)


def test_net_size_resizes_inside_the_exported_model(root, tmp_path):
    """--net-size: the ONNX still takes the 64 px crop; the backbone sees 128 px."""
    import onnx
    import onnxruntime as ort

    res = faceup_cli("train", "--task", "smile", "--data", str(root), "--out", str(tmp_path / "s"),
                     "--scale", "0.001", "--max-steps", "2", "--batch", "8", "--net-size", "128")
    assert res.returncode == 0, res.stdout + res.stderr
    path = tmp_path / "s" / "smile.onnx"
    assert "Resize" in {n.op_type for n in onnx.load(str(path)).graph.node}
    sess = ort.InferenceSession(str(path))
    assert sess.run(None, {"image": np.zeros((3, 3, 64, 64), np.float32)})[0].shape == (3, 2)
    assert json.loads((tmp_path / "s" / "smile_config.json").read_text())["net_size"] == 128


def test_angle_samples_have_no_empty_corners():
    from PIL import Image

    from faceup.train.angle import inner_square, rotated_square

    img = Image.new("RGB", (120, 90), (255, 255, 255))
    for angle in (0.0, 13.0, 45.0, 90.0, 137.0, 222.0, 300.0):
        for cut in (rotated_square, inner_square):
            sq = np.asarray(cut(img, angle, 1.0, 64))
            assert sq.min() > 200, (cut.__name__, angle)  # no black (empty) pixel anywhere


def test_inner_samples_show_more_of_the_picture_than_square_ones():
    from PIL import Image

    from faceup.train.angle import inner_square, rotated_square

    # a white picture with a black frame 10 px wide: the frame shows only when the cut reaches the edge
    img = Image.new("RGB", (100, 100), (0, 0, 0))
    img.paste((255, 255, 255), (10, 10, 90, 90))
    assert np.asarray(inner_square(img, 0.0, 1.0, 50)).min() < 50
    assert np.asarray(rotated_square(img, 0.0, 1.0, 50)).min() > 200


def test_circular_mean_reads_between_bins():
    from faceup.models.angle import BINS, circular_mean

    p = np.zeros((1, BINS))
    p[0, 0] = p[0, 1] = 0.5  # 0 and 5 degrees
    assert abs(circular_mean(p)[0] - 2.5) < 1e-6
    p = np.zeros((1, BINS))
    p[0, -1] = p[0, 1] = 0.5  # 355 and 5 degrees: the mean is 0, not 180
    assert min(circular_mean(p)[0], 360 - circular_mean(p)[0]) < 1e-6


def test_smile_training_faces_are_cut_as_at_run_time_and_balanced(root):
    from faceup.train.attributes import smile_data

    xs, ys, strata = smile_data(root, 12, ("smilesmiled", "genki4k_train"))
    assert xs.shape[1:] == (64, 64, 3) and len(xs) == len(ys) == len(strata) >= 20
    assert set(strata.tolist()) <= {0, 1, 2, 3} and (strata % 2 == ys).all()
    assert {0, 1} <= set(strata.tolist()) or {2, 3} <= set(strata.tolist())
    # cut around a detected face, grey where the crop leaves the picture (not the raw 64x64 file)
    assert (np.abs(xs.astype(int) - 128) <= 2).all(axis=-1).any()


def test_balanced_ages_draw_every_age_group_of_a_stratum_equally_often():
    from faceup.models.attributes import age_group
    from faceup.train.attributes import draw_weights

    rng = np.random.default_rng(0)
    # a source like UTKFace (mostly adults) and one without ages, each in two genders
    ages = np.concatenate([rng.choice([1, 5, 15, 25, 25, 25, 35, 35, 45, 80], 400), np.full(100, np.nan)])
    strata = np.concatenate([rng.integers(0, 2, 400), 2 + rng.integers(0, 2, 100)])
    for balance in (False, True):
        w = draw_weights(strata, ages if balance else None)
        for s in range(4):  # every stratum carries the same total weight either way
            assert w[strata == s].sum() == pytest.approx(1.0)
    w = draw_weights(strata, ages)
    in_s0 = strata == 0
    groups = np.array([age_group(a) for a in ages[in_s0]])
    shares = [w[in_s0][groups == g].sum() for g in np.unique(groups)]
    assert np.allclose(shares, shares[0])  # children as often as adults
    plain = draw_weights(strata)
    assert plain[in_s0][groups == 3].sum() > 2 * plain[in_s0][groups == 0].sum()  # not so without


def test_hard_kinds_are_made_the_same_from_the_same_seed_and_stay_upright_squares(root):
    from faceup.train import samples

    plans = [p for p in samples.plan_training(root, scale=0.01, hard=400) if p.kind.startswith("hard-")]
    assert len({p.kind for p in plans}) == 4
    for plan in plans[:8]:
        a, b = samples._make(plan, 64), samples._make(plan, 64)
        assert a.shape == (64, 64, 3) and a.dtype == np.uint8
        assert np.array_equal(a, b)  # one plan, one picture: the cache and a re-run agree
        assert a.std() > 5  # a picture, not a blank


def test_the_gender_read_out_is_written_into_the_network_and_answers_as_learnt(tmp_path):
    """A read-out learnt on embeddings and appended to a network gives, through
    onnxruntime, the read-out's own probabilities; its first output is the answer."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from faceup.train.gender_head import logistic, sigmoid, with_head

    # a stand-in "face network": the embedding is a fixed linear map of the chip's mean colour
    proj = np.random.default_rng(0).normal(size=(3, 128)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["m"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["m", "proj"], ["embedding"])],
        "net", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 3, 150, 150])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 128])],
        [numpy_helper.from_array(proj, "proj")])
    net = tmp_path / "net.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(net))

    rng = np.random.default_rng(1)
    colours = rng.uniform(0, 255, (200, 3)).astype(np.float32)
    x = colours @ proj
    y = (colours[:, 0] > colours[:, 2]).astype(int)  # "female" when redder than blue
    src = (np.arange(200) % 3 == 0).astype(int)  # two sources of unequal size
    head = logistic(x, y, groups=src)
    assert ((sigmoid(x, head) >= 0.5) == y).mean() > 0.95
    out = with_head(net, head, tmp_path / "gender.onnx")
    sess = ort.InferenceSession(str(out))
    assert [o.name for o in sess.get_outputs()] == ["female", "embedding"]
    chips = np.broadcast_to(colours[:16, :, None, None], (16, 3, 150, 150)).astype(np.float32)
    female, emb = sess.run(None, {"image": chips})
    assert np.allclose(emb, x[:16], rtol=1e-3, atol=0.05)
    assert np.allclose(female[:, 0], sigmoid(emb.astype(np.float64), head), atol=1e-4)
    assert ((female[:, 0] >= 0.5) == y[:16]).mean() >= 0.9  # and it answers the rule it learnt


def test_train_gender_says_what_it_needs(tmp_path, root):
    res = faceup_cli("train", "--task", "gender", "--data", str(root), "--out", str(tmp_path / "g"))
    assert res.returncode == 2 and "--network" in res.stderr and "convert_dlib_face" in res.stderr
    net = tmp_path / "net.onnx"
    net.write_bytes(b"")
    res = faceup_cli("train", "--task", "gender", "--network", str(net), "--sources", "celeba",
                     "--data", str(root), "--out", str(tmp_path / "g"))
    assert res.returncode == 2 and "utkface, gender_web" in res.stderr and "celeba" in res.stderr
    assert not (tmp_path / "g").exists()


def test_smile_faces_cut_aligned_are_the_same_faces_cut_another_way(root, tmp_path, monkeypatch):
    """--crop aligned (tried for smile, README): the same pictures kept, the same labels,
    each crop the grey 64 px of faces.aligned_chip on the largest face found."""
    from PIL import Image

    from faceup import faces
    from faceup.train.attributes import SMILE_SIZE, smile_faces

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # cut now, not read from an earlier cache
    p_level, x_level, y_level = smile_faces(root, "genki4k_train", limit=8)
    p_al, x_al, y_al = smile_faces(root, "genki4k_train", limit=8, kind="aligned")
    assert p_level == p_al and (y_level == y_al).all() and len(p_al) >= 6
    assert not np.array_equal(x_level, x_al)
    img = Image.open(p_al[0]).convert("RGB")
    d = faces.largest_face(img)
    chip = Image.fromarray(faces.aligned_chip(img, d).transpose(1, 2, 0).astype(np.uint8))
    want = np.asarray(chip.convert("L").convert("RGB").resize((SMILE_SIZE, SMILE_SIZE), Image.Resampling.BILINEAR))
    assert np.array_equal(x_al[0], want)
    res = faceup_cli("train", "--task", "agegender", "--crop", "aligned", "--data", str(root),
                     "--out", str(tmp_path / "ag"))
    assert res.returncode == 2 and "--crop" in res.stderr


FER_EXPRESSION = Path(__file__).parent / "data" / "fer_expression.onnx"


def test_expression_network_in_torch_answers_what_the_converted_file_answers():
    """train.expression rebuilds the converted Keras graph (TensorFlow's 'same' pads
    included) and finds every tensor by its Keras name."""
    import onnxruntime as ort
    import torch

    from faceup.train.expression import from_onnx, smile_network

    x = np.random.default_rng(0).uniform(0, 255, (4, 3, 64, 64)).astype(np.float32)
    expected = ort.InferenceSession(str(FER_EXPRESSION)).run(["expression"], {"image": x})[0]
    with torch.no_grad():
        got = torch.softmax(from_onnx(FER_EXPRESSION).eval()(torch.from_numpy(x)), 1).numpy()
        pair = torch.softmax(smile_network(FER_EXPRESSION).eval()(torch.from_numpy(x)), 1).numpy()
    assert np.abs(got - expected).max() < 1e-4
    # the untrained smile head is the choice between neutral (6) and happy (3)
    assert np.allclose(pair[:, 1], expected[:, 3] / (expected[:, 3] + expected[:, 6]), atol=1e-4)


def test_smile_on_the_expression_network_exports_what_it_learnt(root, tmp_path):
    """--backbone expression (tried, README): the exported ONNX answers what the
    trained torch network answers (the pads must be constants, not integer
    divisions of negative sizes, which ONNX truncates)."""
    import onnxruntime as ort
    import torch

    from faceup.train.expression import smile_network

    res = faceup_cli("train", "--task", "smile", "--backbone", "expression", "--network", str(FER_EXPRESSION),
                     "--data", str(root), "--out", str(tmp_path / "s"), "--scale", "0.001", "--max-steps", "2",
                     "--batch", "8")
    assert res.returncode == 0, res.stdout + res.stderr
    model = smile_network(FER_EXPRESSION)
    model.load_state_dict(torch.load(tmp_path / "s" / "best.pt", weights_only=False)["model"])
    x = np.random.default_rng(1).uniform(0, 255, (3, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(tmp_path / "s" / "smile.onnx")).run(None, {"image": x})[0]
    assert got.shape == (3, 2) and np.abs(got - expected).max() < 1e-3


@pytest.mark.parametrize("args, says", [
    (["--task", "agegender", "--backbone", "expression"], "--backbone for --task agegender must be mobilenet"),
    (["--task", "smile", "--backbone", "expression", "--network", "nowhere.onnx"], "convert_fer_expression"),
])
def test_expression_backbone_says_what_it_needs(root, tmp_path, args, says):
    res = faceup_cli("train", *args, "--data", str(root), "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and says in res.stderr.replace("\n", " ")


def test_angle_init_starts_from_another_runs_features(tmp_path):
    """--init (tried for the angle model, README): the features come from the
    checkpoint, not ImageNet; the head is new; a checkpoint without features is refused."""
    import torch

    from faceup.train.backbone import mobilenet_v2, trainee

    src = mobilenet_v2(4, pretrained=False)
    torch.save({"model": src.state_dict()}, tmp_path / "best.pt")
    t = trainee(72, 7, 1e-3, 1e-4, 10, init=tmp_path / "best.pt")
    mine, theirs = t.model.state_dict(), src.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs if k.startswith("features."))
    assert t.model.classifier[1].out_features == 72
    assert not torch.equal(trainee(72, 7, 1e-3, 1e-4, 10).model.features[10].conv[0][0].weight,
                           theirs["features.10.conv.0.0.weight"])  # without --init: ImageNet's
    torch.save({"model": {"classifier.1.weight": torch.zeros(4, 1280)}}, tmp_path / "head.pt")
    with pytest.raises(ValueError, match="no MobileNetV2 features"):
        trainee(72, 7, 1e-3, 1e-4, 10, init=tmp_path / "head.pt")
    res = faceup_cli("train", "--task", "angle", "--init", str(tmp_path / "nowhere.pt"), "--out", str(tmp_path / "a"))
    assert res.returncode == 2 and "no such checkpoint" in res.stderr


def test_lite2_backbone_reads_imagenet_as_its_authors_fed_it_and_exports_what_it_computes(tmp_path):
    """EfficientNet-Lite2 (tried for the angle model, README): its ImageNet weights,
    'same' pads and (x - 127) / 128 input are right when it names real photos; the
    stem and first blocks are frozen; the ONNX answers what torch answers."""
    import onnxruntime as ort
    import skimage.data
    import torch
    from PIL import Image

    from faceup.train.backbone import BACKBONES, Exportable, efficientnet_lite2, export_onnx, trainee

    net = Exportable(efficientnet_lite2(1000, 128), None, *BACKBONES["lite2"]).eval()
    pics = [Image.fromarray(f()).convert("RGB").resize((128, 128)) for f in (skimage.data.chelsea, skimage.data.coffee)]
    x = torch.from_numpy(np.stack([np.asarray(p, np.float32) for p in pics])).permute(0, 3, 1, 2)
    with torch.no_grad():
        top = net(x).argmax(1).tolist()
    assert 281 <= top[0] <= 285 and top[1] == 967  # a cat (tabby .. Egyptian), espresso

    t = trainee(72, 7, 1e-3, 1e-4, 10, backbone="lite2", input_size=128)
    assert all(not p.requires_grad for p in t.frozen.parameters())
    assert all(p.requires_grad for p in t.model._blocks[7].parameters())
    export_onnx(t.wrapped, tmp_path / "a.onnx", 128)
    with torch.no_grad():
        want = t.wrapped(x).numpy()
    got = ort.InferenceSession(str(tmp_path / "a.onnx")).run(None, {"image": x.numpy()})[0]
    assert got.shape == (2, 72) and np.abs(got - want).max() < 1e-3
    with pytest.raises(ValueError, match="mobilenet backbone"):
        trainee(72, 7, 1e-3, 1e-4, 10, backbone="lite2", input_size=128, init=tmp_path / "best.pt")


@pytest.mark.parametrize("args", [["--task", "orientation", "--backbone", "lite2"],
                                  ["--task", "angle", "--backbone", "expression"],
                                  ["--task", "angle", "--backbone", "lite2", "--init", __file__]])
def test_a_backbone_a_task_cannot_use_is_refused(root, tmp_path, args):
    res = faceup_cli("train", *args, "--data", str(root), "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "--backbone" in res.stderr
    assert not (tmp_path / "x").exists()
