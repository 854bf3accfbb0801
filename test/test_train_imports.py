"""Training runs on a machine with only torch, numpy, OpenCV, Pillow, safetensors, PyYAML, tqdm and
ONNX: no ROS, no rosbags, no foundation-model stacks (the GPU machine of tools/gpu/train_all.sh).

A fresh interpreter hides those packages (every import finder answers "not installed" for them,
so `import` fails and `importlib.util.find_spec` finds nothing, as on a machine without them),
then imports the training entry points, runs the preflight import check and a short training run
with its weights and card.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("rosbags", "rclpy", "ament_index_python", "sensor_msgs", "std_msgs", "builtin_interfaces",
           "message_filters", "tf2_ros", "rcl_interfaces", "diagnostic_updater", "diagnostic_msgs",
           "transformers", "timm", "tensorrt", "onnxscript", "scipy", "matplotlib")

SCRIPT = """
import json, sys
BLOCKED = set({blocked!r})

class Hide:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
try:
    import rosbags  # noqa: F401
    hidden = False
except ModuleNotFoundError:
    hidden = True
import depth_sr_ros.cli, depth_sr_ros.tools.train, depth_sr_ros.train.preflight, depth_sr_ros.train.stage_data
from depth_sr_ros.train.loop import TrainConfig, train
from depth_sr_ros.train.preflight import check_imports

config = TrainConfig(backbone="lite_unet", scale=4, synthetic_scenes=2, synthetic_size=(96, 96),
                     model={{"width": 4, "enc_blocks": [1, 1], "middle_dilations": [1], "dec_blocks": [1, 1],
                            "fine_width": 4}},
                     degradations={{"bicubic": 0.5, "real_tof": 0.5}}, patch=32, batch=2, steps=3,
                     warmup_steps=1, out={out!r}, threads=1)
summary = train(config)
print(json.dumps({{"hidden": hidden, "problems": check_imports(), "steps": summary["steps"],
                   "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}}))
"""


def test_training_imports_and_runs_without_ros_rosbags_or_foundation_stacks(tmp_path):
    script = SCRIPT.format(blocked=BLOCKED, out=str(tmp_path / "run"))
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=300,
                          env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"hidden": True, "problems": [], "steps": 3, "loaded": []}
    card = json.loads((tmp_path / "run" / "lite_unet_x4.card.json").read_text())
    assert card["backbone"] == "lite_unet" and card["trained_on"] == "CPU"
