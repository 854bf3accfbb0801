"""`depth-sr`: one command line, one sub-command per offline tool.

Each sub-command lives in `depth_sr_ros.tools.<module>` and provides
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when their
sub-command runs, so `depth-sr --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "replay the bundled TUM sample bag through the default backbone"),
    "replay": ("replay", "run a rosbag2 bag through the node's pipeline and score it"),
    "evaluate": ("evaluate", "score a backbone on an RGB-D image dataset"),
    "train": ("train", "train or fine-tune a network from a YAML config"),
    "models": ("models_list", "list backbones with parameters, GFLOPs and foundation weights"),
    "export-onnx": ("export_onnx", "export a backbone to ONNX"),
    "build-engine": ("build_engine", "build a TensorRT engine offline"),
    "bench": ("bench", "time every pipeline stage per backend and backbone"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depth-sr", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    top = build_parser()
    args, rest = top.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    module_name, help_text = COMMANDS[args.command]
    module = importlib.import_module(f"depth_sr_ros.tools.{module_name}")
    parser = argparse.ArgumentParser(prog=f"depth-sr {args.command}", description=help_text)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


if __name__ == "__main__":
    sys.exit(main())
