"""Torch network backbones. Importing this package registers every network with
`depth_sr_ros.core.backbones` (kind "network")."""

from depth_sr_ros.models import gta_dinov2, lite, nafnet_adain  # noqa: F401  (each registers its backbone)
