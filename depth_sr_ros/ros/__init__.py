"""The ROS 2 adapter: `node` (rclpy, thin), `node_logic` (ROS-free, tested without ROS),
`rclpy_messages` (field sets -> rclpy message objects).

Only `node` and `rclpy_messages` need a ROS 2 installation; they import it lazily.
"""
