"""Sub-commands of `depth-sr` (see `depth_sr_ros.cli`)."""
