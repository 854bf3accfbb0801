"""Offline replay of rosbag2 bags through the node's frame processor, and the bundled sample bag."""
