"""Approximate/exact stamp pairing: jitter, drops, out-of-order and duplicate stamps, rates."""

from __future__ import annotations

import numpy as np
import pytest

from depth_sr_ros.core.sync import StampSync, match_camera_info, pair_stamps

MS = 1_000_000
PERIOD = 33 * MS


def interleave(rgb: list[int], depth: list[int]) -> list[tuple[str, int, tuple[str, int]]]:
    """Arrivals in stamp order (the order a recorder logs them), keyed by (stream, index)."""
    events = [("rgb", s, ("rgb", i)) for i, s in enumerate(rgb)]
    events += [("depth", s, ("depth", i)) for i, s in enumerate(depth)]
    return sorted(events, key=lambda e: (e[1], e[0]))


def keys(result) -> list[tuple[int, int]]:
    return [(p.rgb.key[1], p.depth.key[1]) for p in result.pairs]


def test_jitter_pairs_every_frame_with_its_own_partner() -> None:
    rng = np.random.default_rng(0)
    rgb = [i * PERIOD for i in range(50)]
    depth = [s + 4 * MS + int(rng.integers(-3 * MS, 3 * MS)) for s in rgb]
    result = pair_stamps(interleave(rgb, depth), queue_size=5, slop_s=0.010)
    assert keys(result) == [(i, i) for i in range(50)]
    assert result.unpaired == []


def test_dropped_depth_frames_leave_their_rgb_unpaired_with_reason() -> None:
    rgb = [i * PERIOD for i in range(20)]
    dropped = {3, 4, 11}
    depth = [s + 2 * MS for i, s in enumerate(rgb) if i not in dropped]
    result = pair_stamps(interleave(rgb, depth), queue_size=5, slop_s=0.010)
    assert sorted(r for r, _ in keys(result)) == [i for i in range(20) if i not in dropped]
    assert all(rgb[r] == result.pairs[n].rgb.stamp_ns for n, (r, _) in enumerate(keys(result)))
    assert sorted(u.key[1] for u in result.unpaired) == sorted(dropped)
    assert result.skip_counts() == {"no_match_within_slop": 3}
    assert len(result.pairs) * 2 + len(result.unpaired) == len(rgb) + len(depth)


def test_stamp_just_at_slop_does_not_pair_but_just_below_does() -> None:
    slop = 10 * MS
    at = pair_stamps([("rgb", 0, 0), ("depth", slop, 0)], slop_s=0.010)
    below = pair_stamps([("rgb", 0, 0), ("depth", slop - 1, 0)], slop_s=0.010)
    assert at.pairs == [] and at.skip_counts() == {"no_match_within_slop": 2}
    assert len(below.pairs) == 1


def test_nearest_queued_partner_wins() -> None:
    # Two depth frames queued, both within slop of the RGB frame: the nearer is taken.
    arrivals = [("depth", 100 * MS, "far"), ("depth", 108 * MS, "near"), ("rgb", 110 * MS, "rgb")]
    result = pair_stamps(arrivals, slop_s=0.020)
    assert [(p.rgb.key, p.depth.key) for p in result.pairs] == [("rgb", "near")]
    assert [(u.key, u.reason) for u in result.unpaired] == [("far", "partner_taken")]


def test_greedy_policy_pairs_on_arrival_like_message_filters() -> None:
    # message_filters pairs as soon as a partner within slop is queued, even if a nearer one
    # arrives later; the later one is then left without a partner.
    arrivals = [("rgb", 100 * MS, "rgb"), ("depth", 112 * MS, "first"), ("depth", 101 * MS, "late")]
    result = pair_stamps(arrivals, slop_s=0.020)
    assert [(p.rgb.key, p.depth.key) for p in result.pairs] == [("rgb", "first")]
    assert [(u.key, u.reason) for u in result.unpaired] == [("late", "partner_taken")]


def test_out_of_order_stamps_still_pair_when_queue_has_room() -> None:
    rgb = [i * PERIOD for i in range(10)]
    depth = [s + MS for s in rgb]
    arrivals = interleave(rgb, depth)
    arrivals[4], arrivals[6] = arrivals[6], arrivals[4]  # rgb 2 and rgb 3 swap arrival order
    result = pair_stamps(arrivals, queue_size=5, slop_s=0.010)
    assert sorted(keys(result)) == [(i, i) for i in range(10)]


def test_stale_out_of_order_message_overflows_a_full_queue() -> None:
    # queue_size 1: an RGB frame older than the one already queued is itself the oldest stamp
    # and is dropped on arrival, exactly as message_filters trims its stamp-keyed queue.
    arrivals = [("rgb", 200 * MS, "new"), ("rgb", 100 * MS, "old"), ("depth", 101 * MS, "d_old"),
                ("depth", 201 * MS, "d_new")]
    result = pair_stamps(arrivals, queue_size=1, slop_s=0.010)
    assert [(p.rgb.key, p.depth.key) for p in result.pairs] == [("new", "d_new")]
    reasons = {u.key: u.reason for u in result.unpaired}
    assert reasons == {"old": "queue_overflow", "d_old": "queue_overflow"}


def test_late_stream_overflows_small_queue() -> None:
    # Depth arrives 5 frames late (recorder latency); a queue of 3 RGB frames cannot bridge it.
    rgb = [("rgb", i * PERIOD, i) for i in range(12)]
    depth = [("depth", i * PERIOD + MS, i) for i in range(12)]
    arrivals = rgb[:5] + [x for pair in zip(rgb[5:], depth) for x in pair] + depth[7:]
    small = pair_stamps(arrivals, queue_size=3, slop_s=0.010)
    large = pair_stamps(arrivals, queue_size=8, slop_s=0.010)
    assert len(large.pairs) == 12 and large.unpaired == []
    assert small.skip_counts().get("queue_overflow", 0) > 0
    assert len(small.pairs) * 2 + len(small.unpaired) == 24


def test_duplicate_stamp_replaces_queued_message() -> None:
    arrivals = [("rgb", 0, "first"), ("rgb", 0, "second"), ("depth", MS, "d")]
    result = pair_stamps(arrivals, slop_s=0.010)
    assert [(p.rgb.key, p.depth.key) for p in result.pairs] == [("second", "d")]
    assert [(u.key, u.reason) for u in result.unpaired] == [("first", "duplicate_stamp")]


def test_different_rates_pair_each_depth_with_nearest_rgb() -> None:
    # RGB at 30 Hz, depth at 10 Hz with a 2 ms offset: each depth pairs with the RGB frame
    # nearest in stamp; the other RGB frames are unpaired (no depth within slop).
    rgb = [i * PERIOD for i in range(30)]
    depth = [i * 3 * PERIOD + 2 * MS for i in range(10)]
    result = pair_stamps(interleave(rgb, depth), queue_size=10, slop_s=0.010)
    assert keys(result) == [(3 * j, j) for j in range(10)]
    assert result.skip_counts() == {"no_match_within_slop": 20}


def test_exact_policy_pairs_equal_stamps_only() -> None:
    rgb = [i * PERIOD for i in range(6)]
    depth = [s if i % 2 == 0 else s + 1 for i, s in enumerate(rgb)]
    result = pair_stamps(interleave(rgb, depth), queue_size=5, exact=True)
    assert keys(result) == [(0, 0), (2, 2), (4, 4)]
    assert result.skip_counts() == {"no_match_within_slop": 6}


def test_online_sync_holds_payload_and_emits_pairs_on_completion() -> None:
    sync = StampSync(queue_size=3, slop_s=0.010)
    assert sync.add("rgb", 0, 0, payload="rgb message") == []
    (pair,) = sync.add("depth", 2 * MS, 0, payload="depth message")
    assert (pair.rgb.payload, pair.depth.payload) == ("rgb message", "depth message")
    assert sync.finish() == []


@pytest.mark.parametrize("bad", [{"queue_size": 0}, {"slop_s": 0.0}])
def test_invalid_configuration_is_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        StampSync(**bad)


def test_camera_info_matching_prefers_equal_stamp_then_latest_earlier() -> None:
    infos = [100, 50, 200, 200]  # out of order, with a duplicate stamp
    images = [40, 50, 120, 200, 300]
    assert match_camera_info(images, infos) == [None, 1, 0, 3, 3]
