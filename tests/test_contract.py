"""The library owns its orchestration: a training request and an evaluation's
sources are checked by the library, whole, before any work; the CLI only
respells the fields a message names as its flags."""

import pytest
from PIL import Image

from faceup import evaluate, pipeline
from faceup.errors import BadOptionError
from faceup.train.options import parse_also
from faceup.train.run import Task, TrainRequest


@pytest.mark.parametrize("kw, says", [
    ({"task": "xyz"}, "`task` must be one of orientation, angle"),
    ({"task": "agegender", "backbone": "expression"}, "`backbone` for `task` agegender must be mobilenet"),
    ({"task": "orientation", "also": (("crowds", 2),)}, "`also` is for `task` angle"),
    ({"task": "angle", "also": (("lfw", 2),)}, "NAME:SAMPLES"),
    ({"task": "angle", "samples": "round"}, "`samples` must be one of square, inner"),
    ({"task": "agegender", "crop": "aligned"}, "aligned is for `task` smile only"),
    ({"task": "gender"}, "`task` gender needs `network`"),
    ({"scale": 0}, "`scale` must be in (0, 1]"),
])
def test_a_training_request_is_checked_whole_when_made(kw, says):
    """Without torch: nothing here trains, the request refuses itself."""
    with pytest.raises(BadOptionError) as e:
        TrainRequest(**kw)
    assert says in str(e.value)


def test_a_good_training_request_names_its_task_and_run_folder(tmp_path):
    req = TrainRequest(task="angle", also=parse_also("crowds:14, frames68:3"))
    assert req.task is Task.angle and req.also == (("crowds", 14), ("frames68", 3))
    assert str(req.run_folder) == "runs/angle" and TrainRequest(out=tmp_path).run_folder == tmp_path


def test_the_cli_spells_the_fields_as_its_flags(tmp_path):
    from conftest import faceup_cli

    r = faceup_cli("train", "--task", "orientation", "--also", "crowds:2", "--out", str(tmp_path))
    assert r.returncode == 2 and "--also is for --task angle" in r.stderr
    r = faceup_cli("evaluate", "--heldout", "nowhere")
    assert r.returncode == 2 and "--heldout must be one of faces" in r.stderr


def test_evaluation_sources_and_the_merged_report(tmp_path, astronaut_small):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    astronaut_small.save(tmp_path / "top.jpg")
    astronaut_small.save(tmp_path / "a" / "x.jpg")
    Image.new("RGB", (64, 48), "white").save(tmp_path / "b" / "y.png")
    found = evaluate.sources(tmp_path)
    assert {k: len(v) for k, v in found.items()} == {tmp_path.name: 1, "a": 1, "b": 1}
    with pytest.raises(BadOptionError, match="`heldout` must be one of"):
        evaluate.sources(heldout="elsewhere")
    with pytest.raises(BadOptionError, match="not 'elsewhere'"):  # every name of a list is checked
        evaluate.sources(heldout="faces,elsewhere")
    with pytest.raises(BadOptionError, match="give a directory"):
        evaluate.sources(tmp_path / "missing")
    rows, overall = evaluate.run(found, pipeline.Options())
    assert [r["name"] for r in rows] == [tmp_path.name, "a", "b"] and overall["name"] == "all"
    assert overall["cases"] == sum(r["cases"] for r in rows) == 12
    assert sum(map(sum, overall["confusion"])) == 12
    # the astronaut (a face) is right every way, whatever the white square says
    assert rows[0]["accuracy"] == 1.0 and rows[1]["accuracy"] == 1.0


def test_every_operation_has_one_many_and_iter_in_order(astronaut_small, chelsea):
    """analyze and background take many pictures as predict and fix do: read once,
    judged together, a bad one answered in its place, the same answers as one by one."""
    import io

    from conftest import jpeg_bytes, turn

    from faceup.background import Replacement
    from faceup.errors import FaceupError, UnfaithfulWriteError

    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    pics = [jpeg_bytes(turn(astronaut_small, 90)), b"not a picture" * 10, buf.getvalue(), jpeg_bytes(chelsea)]
    names = ["a.jpg", "b.jpg", "c.gif", "d.jpg"]

    many = pipeline.analyze_many(pics, paths=names, only=["faces"])
    assert [a.prediction.path for a in many] == names
    assert many[0].prediction.rotation == 90 and len(many[0].faces) == 1 and many[0].faces[0].smile is None
    assert many[1].prediction.error and not many[1].faces
    assert [a.to_json() for a in pipeline.analyze_iter(pics, paths=names, only="faces", chunk=3)] == \
           [a.to_json() for a in many] == [pipeline.analyze(p, path=n, only=("faces",)).to_json()
                                           for p, n in zip(pics, names)]
    with pytest.raises(BadOptionError, match="`only` takes faces, smile, age, gender; not race"):
        pipeline.analyze_many(pics, only="faces,race")

    how = Replacement(color="white")
    got = pipeline.background_many(pics, how, paths=names)
    assert isinstance(got[1], FaceupError) and isinstance(got[2], UnfaithfulWriteError)
    assert got[0].prediction.rotation == 90 and got[0].data == pipeline.background(pics[0], how).data
    assert [type(r) for r in pipeline.background_iter(pics, how, paths=names, chunk=2)] == [type(r) for r in got]
    with pytest.raises(FaceupError, match="cannot write 'xyz'"):
        pipeline.Options(format="xyz")  # refused when made, before any model runs
    with pytest.raises(FaceupError, match="transparen"):  # refused before the first picture is read
        pipeline.background_iter(pics, Replacement(transparent=True), pipeline.Options(format="jpeg"))


def test_output_names_come_from_one_place(tmp_path, astronaut_small, server):
    """NAME.TAG.EXT is made by imageio.output_name for the CLI and the server alike."""
    import httpx
    from conftest import faceup_cli, jpeg_bytes, turn

    from faceup import imageio

    assert imageio.output_name("photo.v2.jpeg", "upright") == "photo.v2.upright.jpeg"
    assert imageio.output_name("photo.v2.jpeg", "upright", "webp") == "photo.v2.upright.webp"
    assert imageio.in_format("a/b.tar.jpg".split("/")[-1], "png") == "b.tar.png"
    src = tmp_path / "photo.v2.jpeg"
    src.write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    r = faceup_cli("fix", str(src), "--format", "webp")
    assert r.returncode == 0 and (tmp_path / "photo.v2.upright.webp").is_file(), r.stderr
    r = faceup_cli("explain", str(src))
    assert r.returncode == 0 and (tmp_path / "photo.v2.why.png").is_file(), r.stderr
    got = httpx.post(server + "/fix", files={"file": ("photo.v2.jpeg", src.read_bytes())}, data={"format": "webp"},
                     timeout=60)
    assert got.status_code == 200 and 'filename="photo.v2.upright.webp"' in got.headers["content-disposition"]


def test_a_library_message_names_fields_and_each_door_spells_them(tmp_path, astronaut_small, server):
    import io

    import httpx
    from conftest import faceup_cli, jpeg_bytes

    from faceup.errors import DecompressionBombError, UnfaithfulWriteError

    data = jpeg_bytes(astronaut_small)
    with pytest.raises(DecompressionBombError, match="raise it with `max_pixels`"):
        pipeline.fix(data, pipeline.Options(max_pixels=100))
    (tmp_path / "a.jpg").write_bytes(data)
    r = faceup_cli("predict", "--json", "--max-pixels", "100", str(tmp_path / "a.jpg"))
    err = __import__("json").loads(r.stdout)["error"]
    assert "raise it with --max-pixels" in err and "`" not in err
    r = faceup_cli("fix", "--max-pixels", "100", str(tmp_path / "a.jpg"))
    assert "raise it with --max-pixels" in r.stderr and "`" not in r.stderr

    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(UnfaithfulWriteError, match=r"\(`format`\) to keep them all"):
        pipeline.fix(buf.getvalue(), pipeline.Options(format="jpeg"))
    got = httpx.post(server + "/fix", files={"file": ("a.gif", buf.getvalue())}, data={"format": "jpeg"}, timeout=60)
    assert got.status_code == 422 and "(format=) to keep them all" in got.json()["error"], got.text


def test_one_set_of_answer_shapes_for_the_json_lines_http_and_the_table():
    """The CLI's JSON keys, the HTTP response model and the results table's
    prediction columns are one definition (schemas.PredictionOut)."""
    pa = pytest.importorskip("pyarrow")
    from faceup.batch.journal import SCHEMA
    from faceup.schemas import PredictionOut

    keys = list(pipeline.Prediction(path="x").to_json())
    assert keys == list(PredictionOut.model_fields)
    cols = SCHEMA.names
    start = cols.index("rotation")
    assert cols[start:start + len(keys) - 1] == keys[1:]
    assert SCHEMA.field("rotation").type == pa.int32() and SCHEMA.field("confident").type == pa.bool_()
    assert SCHEMA.field("confidence").type == pa.float64() and SCHEMA.field("error").type == pa.string()


def test_the_everyday_and_street_held_out_parts_are_never_learnt_from():
    from conftest import data_root

    from faceup import datasets

    root = data_root()
    if root is None:
        pytest.skip("../shared/data is not here; set FACEUP_DATA")
    everyday = evaluate.sources(heldout="everyday", data=root)["everyday"]
    street = evaluate.sources(heldout="street", data=root)["street"]
    every = evaluate.sources(heldout="all", data=root)
    assert list(every) == list(evaluate.HELDOUT) and every["everyday"] == everyday
    assert list(evaluate.sources(heldout="street,faces", data=root)) == ["street", "faces"]
    learnt = {p for split in ("train", "val") for p in datasets.objects(root, split) + datasets.camvid(root, split)}
    assert everyday and street and not learnt & set(everyday + street)
    assert {p.stem.split("_")[1] for p in street} == set(datasets.CAMVID_DRIVES["test"])  # one whole drive
