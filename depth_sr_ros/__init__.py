"""RGB-guided depth super-resolution for ROS 2.

`depth_sr_ros.core` is ROS-free (numpy/torch in, numpy out); `depth_sr_ros.ros` adapts it to
rclpy. rclpy, TensorRT and CUDA are imported lazily, only where used.
"""

__version__ = "0.1.0"
