"""ROS-free core: message-field conversion, the super-resolution pipeline, classic upsamplers."""
