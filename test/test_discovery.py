"""Which topics of a recording replay reads when no topic flag is given (`replay/discovery.py`)."""

from __future__ import annotations

import pytest

from depth_sr_ros.replay.discovery import TopicDiscoveryError, find_topics, help_text

IMAGE, COMPRESSED, INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo"


def recording(*topics: tuple[str, str]) -> dict[str, tuple[str, int]]:
    return {name: (msgtype, 30) for name, msgtype in topics}


def camera(namespace: str, image: str = "image_raw", msgtype: str = IMAGE) -> list[tuple[str, str]]:
    return [(f"{namespace}/{image}", msgtype), (f"{namespace}/camera_info", INFO)]


DRIVERS = {
    "realsense-ros": (recording(*camera("/camera/camera/color"), ("/camera/camera/color/image_raw/compressed", COMPRESSED),
                                *camera("/camera/camera/depth", "image_rect_raw"),
                                ("/camera/camera/depth/image_rect_raw/compressedDepth", COMPRESSED),
                                *camera("/camera/camera/aligned_depth_to_color"),
                                *camera("/camera/camera/infra1", "image_rect_raw"),
                                ("/camera/camera/depth/color/points", "sensor_msgs/msg/PointCloud2")),
                      "/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw"),
    "azure-kinect": (recording(*camera("/rgb"), *camera("/depth"), *camera("/depth_to_rgb"), *camera("/rgb_to_depth"),
                               *camera("/ir")),
                     "/rgb/image_raw", "/depth_to_rgb/image_raw"),
    "orbbec": (recording(*camera("/camera/color"), *camera("/camera/depth"), *camera("/camera/ir")),
               "/camera/color/image_raw", "/camera/depth/image_raw"),
    "zed": (recording(*camera("/zed/zed_node/rgb", "image_rect_color"), *camera("/zed/zed_node/rgb_raw", "image_raw_color"),
                      *camera("/zed/zed_node/left", "image_rect_color"), *camera("/zed/zed_node/right", "image_rect_color"),
                      *camera("/zed/zed_node/depth", "depth_registered"),
                      ("/zed/zed_node/confidence/confidence_map", IMAGE)),
            "/zed/zed_node/rgb/image_rect_color", "/zed/zed_node/depth/depth_registered"),
    "realsense-viewer": (recording(("/device_0/sensor_1/Color_0/image/data", IMAGE),
                                   ("/device_0/sensor_1/Color_0/info/camera_info", INFO),
                                   ("/device_0/sensor_0/Depth_0/image/data", IMAGE),
                                   ("/device_0/sensor_0/Depth_0/info/camera_info", INFO),
                                   ("/device_0/sensor_0/Infrared_1/image/data", IMAGE)),
                         "/device_0/sensor_1/Color_0/image/data", "/device_0/sensor_0/Depth_0/image/data"),
    "openni-ros1": (recording(("/camera/rgb/image_raw", IMAGE), ("/camera/rgb/image_color", IMAGE),
                              *camera("/camera/rgb", "image_rect_color"), ("/camera/depth/image", IMAGE),
                              *camera("/camera/depth"), ("/camera/depth_registered/image", IMAGE),
                              *camera("/camera/depth_registered")),
                    "/camera/rgb/image_rect_color", "/camera/depth_registered/image_raw"),
    "tum-rgbd": (recording(*camera("/camera/rgb", "image_color"), *camera("/camera/depth", "image")),
                 "/camera/rgb/image_color", "/camera/depth/image"),
    "sample-bag": (recording(*camera("/camera/color"), *camera("/camera/depth"), ("/ground_truth/depth/image_raw", IMAGE)),
                   "/camera/color/image_raw", "/camera/depth/image_raw"),
    "compressed-only": (recording(("/cam/color/image_raw/compressed", COMPRESSED), ("/cam/color/camera_info", INFO),
                                  ("/cam/depth/image_raw/compressed", COMPRESSED),
                                  ("/cam/depth/image_raw/compressedDepth", COMPRESSED), ("/cam/depth/camera_info", INFO)),
                        "/cam/color/image_raw/compressed", "/cam/depth/image_raw/compressedDepth"),
}


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_each_drivers_obvious_set_is_found_with_its_camera_infos(driver: str) -> None:
    present, rgb, depth = DRIVERS[driver]
    choice = find_topics(present, {})
    assert (choice.rgb, choice.depth) == (rgb, depth)
    assert choice.rgb_info in present and present[choice.rgb_info][0] == INFO
    assert choice.depth_info in present and present[choice.depth_info][0] == INFO


def test_two_cameras_are_refused_with_a_table_and_flags_choose() -> None:
    present = recording(*camera("/front/color"), *camera("/front/depth"), *camera("/back/color"), *camera("/back/depth"))
    with pytest.raises(TopicDiscoveryError) as caught:
        find_topics(present, {})
    text = str(caught.value)
    assert "--rgb-topic" in text and "--depth-topic" in text
    rows = text.splitlines()[2:]  # after the message and the table header
    assert sorted(row.split()[1] for row in rows) == sorted(t for t in present if not t.endswith("camera_info"))
    choice = find_topics(present, {"rgb": "/back/color/image_raw", "depth": "/back/depth/image_raw"})
    assert (choice.rgb_info, choice.depth_info) == ("/back/color/camera_info", "/back/depth/camera_info")


def test_given_topics_are_kept_and_empty_ones_are_off() -> None:
    present, _, _ = DRIVERS["orbbec"]
    choice = find_topics(present, {"depth": "/camera/ir/image_raw", "depth_info": ""})
    assert (choice.rgb, choice.depth, choice.depth_info) == ("/camera/color/image_raw", "/camera/ir/image_raw", "")
    lidar = find_topics(present, {"depth": "", "depth_info": ""})  # a LiDAR replaces the depth image
    assert (lidar.depth, lidar.depth_info) == ("", "")
    missing = find_topics(present, {"rgb": "/other/image_raw"})  # named, so that require() reports it missing
    assert missing.rgb_info == "/other/camera_info"


def test_no_depth_topic_is_refused() -> None:
    with pytest.raises(TopicDiscoveryError, match="no depth image topic"):
        find_topics(recording(*camera("/camera/color")), {})


def test_help_names_the_default_topics() -> None:
    text = help_text()
    for topic in ("/camera/color/image_raw", "/camera/depth/image_raw", "/device_0/sensor_0/Depth_0/image/data",
                  "/camera/camera/aligned_depth_to_color/image_raw", "/depth_to_rgb/image_raw"):
        assert topic in text
