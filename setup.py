"""ament_python package: installs with `pip install -e .` (running, no torch), `pip install -e ".[torch,test]"`
(development, no ROS) and `colcon build` (ROS 2)."""

from glob import glob

from setuptools import find_namespace_packages, find_packages, setup

PACKAGE = "depth_sr_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    # the sample data folders are namespace packages, so that setuptools installs their files as
    # package data without a "Package would be ignored" warning for each (colcon build stays quiet)
    packages=find_packages(exclude=("test",)) + find_namespace_packages(include=[f"{PACKAGE}.samples.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/models", glob("models/*")),
    ],
    package_data={PACKAGE: ["samples/tum_fr1/*/*", "samples/tum_fr1/*.*", "weights/*", "eval/*.json"]},
    include_package_data=True,
    python_requires=">=3.10",
    # Running (demo, replay, the node) needs no torch: classic backbones in numpy, networks through
    # ONNX Runtime from the ONNX files shipped in models/. numpy 1.24-2.x: Ubuntu 24.04 / ROS 2 Jazzy
    # ship numpy 1.26 and pip must not replace it (docs/robot.md).
    install_requires=[
        "numpy>=1.24,<3",
        "opencv-python-headless>=4.8",
        "pillow>=10",
        "rosbags>=0.11",  # MCAP writing with zstd chunks (CompressionMode.STORAGE)
        "tqdm>=4.60",
        "pyyaml>=6",
        "onnxruntime>=1.17",
    ],
    extras_require={
        # training, ONNX export, the torch and TensorRT backends, weights from safetensors
        "torch": ["torch>=2.1", "safetensors>=0.4", "onnx>=1.15", "onnxscript>=0.1"],
        "foundation": ["transformers>=4.40"],
        # what the tests need besides torch (tests that need torch skip without it)
        "test": ["pytest>=7", "hypothesis>=6.100", "ruff>=0.4", "mypy>=1.8", "transformers>=4.40", "safetensors>=0.4",
                 "onnx>=1.15", "onnxscript>=0.1"],
    },
    zip_safe=False,
    maintainer="depth_sr_ros maintainers",
    maintainer_email="maintainers@depth-sr-ros.invalid",
    description="RGB-guided depth super-resolution for ROS 2 (ToF / LiDAR to dense depth).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "depth-sr = depth_sr_ros.cli:main",
            "depth_sr_node = depth_sr_ros.ros.node:main",
        ],
    },
)
