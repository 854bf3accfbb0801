"""The ROS 2 node: `node` and `rclpy_io` adapt rclpy; everything that decides something is ROS-free
(`parameters`, `topics`, `health`, `frame_handler`, `frame_worker`, `pipeline_slot`) and tested
without ROS. `rclpy_messages` builds rclpy messages; `live_probe` drives a launched node from
outside (live tests, live benchmark). Only those import ROS, and lazily.
"""
