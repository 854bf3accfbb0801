"""Launch depth_sr_node: `ros2 launch depth_sr_ros sr.launch.py scale:=8`.

`ros2 launch depth_sr_ros sr.launch.py --show-args` lists every argument. Parameters come from
`params_file` (default: the package's config/sr.yaml); a parameter argument given on the command
line overrides it, and one left empty (the default) keeps the file's value. Launch arguments are
strings: they are converted to the parameter's type and checked against the node's parameter
table (`depth_sr_ros.ros.parameters`), never evaluated; a bad value stops the launch with the
reason. The input pairing (`slop`, `queue_size`, `exact_sync`) and how depth is taken
(`input_mode`, `assume_registered`) are arguments too. `ros2 launch` accepts any `name:=value`
and ignores the ones a launch file does not declare: this file logs a warning naming such an
argument and the known ones, so that a misspelt `slopp:=0.05` does not pass unnoticed.

The node is a lifecycle node. With `autostart:=true` (default) this file configures it once the
process is up and activates it once configured, as the ros2/demos lifecycle tests do; with
`autostart:=false` drive it with `ros2 lifecycle set <node> configure|activate`.
"""

import difflib
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessStart
from launch.events import matches_action
from launch.launch_description import LaunchDescription
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from depth_sr_ros.ros import parameters as table
from depth_sr_ros.ros import topics

PACKAGE = "depth_sr_ros"
TRUE_FALSE = ["true", "false"]
# node parameters that are launch arguments besides table.LAUNCH_PARAMETERS: how RGB and depth
# frames are paired, and whether depth in another frame counts as registered
PAIRING_PARAMETERS = ("slop", "queue_size", "exact_sync", "assume_registered")
ARGUMENT_PARAMETERS = tuple(dict.fromkeys((*table.LAUNCH_PARAMETERS, *PAIRING_PARAMETERS)))


def _choice_text(value):
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _parameter_argument(name):
    """A launch argument for one node parameter; empty = keep the params file's value."""
    spec = table.PARAMETER_BY_NAME[name]
    if spec.choices is not None:
        choices = ["", *(_choice_text(c) for c in spec.choices)]
    elif spec.type is bool:
        choices = ["", *TRUE_FALSE]
    else:
        choices = None
    description = (
        f"{spec.description} Empty: the params_file value (shipped default: {_choice_text(spec.default)!r})"
    )
    return DeclareLaunchArgument(name, default_value="", description=description, choices=choices)


def _declare_arguments():
    default_params = os.path.join(get_package_share_directory(PACKAGE), "config", "sr.yaml")
    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=default_params,
            description="YAML file with the node's parameters (under '/**: ros__parameters:')",
        ),
        DeclareLaunchArgument(
            "namespace",
            default_value="",
            description="Namespace of the node and of its relative topics (e.g. 'camera')",
        ),
        DeclareLaunchArgument(
            "node_name",
            default_value=topics.NODE_NAME,
            description="Name of the node",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=TRUE_FALSE,
            description="Use /clock (set true with `ros2 bag play --clock`)",
        ),
        DeclareLaunchArgument(
            "autostart",
            default_value="true",
            choices=TRUE_FALSE,
            description="Configure and activate the lifecycle node at launch",
        ),
        DeclareLaunchArgument(
            "log_level",
            default_value="info",
            choices=["debug", "info", "warn", "error", "fatal"],
            description="Logging level of the node",
        ),
    ]
    arguments += [_parameter_argument(name) for name in ARGUMENT_PARAMETERS]
    arguments += [
        DeclareLaunchArgument(
            argument, default_value=topic, description=f"Topic remapped to the node's '{topic}'"
        )
        for argument, topic in topics.REMAP_ARGUMENTS.items()
    ]
    return arguments


def _warn_unknown_arguments(context, known):
    """Log a warning for each `name:=value` given to `ros2 launch` that this file does not declare
    (launch itself ignores them silently), with the closest known name and the full list."""
    for name in sorted(set(context.launch_configurations) - set(known)):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        get_logger("sr.launch").warning(
            f"unknown launch argument {name}:={context.launch_configurations[name]!r} is ignored{hint}. "
            f"Known arguments: {', '.join(sorted(known))} (`--show-args` describes them)"
        )


def _launch_setup(context, known):
    def value(name):
        return LaunchConfiguration(name).perform(context)

    _warn_unknown_arguments(context, known)
    overrides = table.launch_overrides({name: value(name) for name in ARGUMENT_PARAMETERS})
    overrides["use_sim_time"] = value("use_sim_time") == "true"
    node = LifecycleNode(
        package=PACKAGE,
        executable="depth_sr_node",
        name=value("node_name"),
        namespace=value("namespace"),
        parameters=[value("params_file"), overrides],
        remappings=topics.remappings({argument: value(argument) for argument in topics.REMAP_ARGUMENTS}),
        arguments=["--ros-args", "--log-level", value("log_level")],
        output="screen",
        emulate_tty=True,
    )
    actions = [node]
    if value("autostart") == "true":
        actions += [
            RegisterEventHandler(
                OnProcessStart(target_action=node, on_start=[_transition(node, "configure")])
            ),
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=node,
                    start_state="configuring",
                    goal_state="inactive",
                    entities=[_transition(node, "activate")],
                )
            ),
        ]
    return actions


def _transition(node, name):
    transition_id = {
        "configure": Transition.TRANSITION_CONFIGURE,
        "activate": Transition.TRANSITION_ACTIVATE,
    }[name]
    return EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id)
    )


def generate_launch_description():
    arguments = _declare_arguments()
    known = [argument.name for argument in arguments]
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_setup, args=[known])])
