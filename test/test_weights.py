"""Our weights: safetensors + model card round trips, and clear errors for bad files; the zoo."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch
from test_models import NETWORKS, TINY_KWARGS, foundation_kwargs, inputs, tiny_network

from depth_sr_ros.models import zoo
from depth_sr_ros.models.safetensors_header import tensor_shapes
from depth_sr_ros.models.weights import (
    ModelCard,
    WeightsError,
    card_path,
    load_network,
    read_card,
    save_weights,
    sha256_file,
)


def card_for(name: str, scale: int, **fields) -> ModelCard:
    return ModelCard(
        backbone=name, scale=scale, training_data="synthetic scenes (test)",
        evaluation_protocol="none (test)", trained_on="CPU", **fields,
    )


def saved(tmp_path, name: str = "nafnet_adain", scale: int = 4, stem: str = "net", **card_fields):
    model = tiny_network(name, scale)
    foundation = ["dinov2_vits14"] if name == "gta_dinov2" else []
    path = save_weights(model, tmp_path / f"{stem}.safetensors", card_for(name, scale, foundation=foundation,
                                                                           **card_fields))
    return model, path


@pytest.mark.parametrize("name", NETWORKS)
def test_round_trip_gives_identical_outputs(tmp_path, name: str) -> None:
    model, path = saved(tmp_path, name, 2)
    card = read_card(path)
    assert card.sha256 == sha256_file(path)
    assert card.parameters == sum(p.numel() for n, p in model.named_parameters() if not n.startswith("foundation."))
    loaded = load_network(name, 2, path, **foundation_kwargs(name))
    assert not loaded.training
    x = inputs(5, 7, 2)
    with torch.no_grad():
        assert torch.equal(model(*x), loaded(*x))


def test_card_is_readable_json_with_the_config(tmp_path) -> None:
    _, path = saved(tmp_path, metrics={"val_rmse": 0.031})
    data = json.loads(card_path(path).read_text())
    assert card_path(path).name == "net.card.json"
    assert data["backbone"] == "nafnet_adain" and data["scale"] == 4
    assert data["config"]["width"] == TINY_KWARGS["nafnet_adain"]["width"]
    assert data["config"]["guide"] == "rgb" and "scale" not in data["config"]
    assert data["metrics"] == {"val_rmse": 0.031}


def test_frozen_foundation_is_not_stored(tmp_path) -> None:
    from safetensors import safe_open

    model, path = saved(tmp_path, "gta_dinov2", 2)
    with safe_open(str(path), "pt") as stored:
        keys = set(stored.keys())
    assert keys and not any(k.startswith("foundation.") for k in keys)
    with pytest.raises(WeightsError, match="card.foundation"):
        save_weights(model, tmp_path / "x.safetensors", card_for("gta_dinov2", 2))


def test_wrong_shapes_are_named(tmp_path) -> None:
    _, path = saved(tmp_path)
    card = json.loads(card_path(path).read_text())
    card["config"]["width"] = 8  # the card now describes a wider network than the file holds
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=r"wrong shapes: decoders.0.0.beta: file \(1, 4, 1, 1\) vs network \(1, 8, 1, 1\)"):
        load_network("nafnet_adain", 4, path)


def test_missing_tensors_are_named(tmp_path) -> None:
    _, path = saved(tmp_path)
    card = json.loads(card_path(path).read_text())
    card["config"]["middle_blocks"] = 2
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=r"missing tensors: middle\.1\."):
        load_network("nafnet_adain", 4, path)


def test_missing_card(tmp_path) -> None:
    _, path = saved(tmp_path)
    card_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="no model card .* expected .*net.card.json"):
        load_network("nafnet_adain", 4, path)


def test_truncated_file(tmp_path) -> None:
    _, path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_network("nafnet_adain", 4, path)


def test_replaced_file_fails_the_sha_check(tmp_path) -> None:
    _, path = saved(tmp_path)
    card_text = card_path(path).read_text()
    save_weights(tiny_network("nafnet_adain", 4, seed=5), path, card_for("nafnet_adain", 4))
    card_path(path).write_text(card_text)  # old card, new file
    with pytest.raises(WeightsError, match="does not match its card: sha256"):
        load_network("nafnet_adain", 4, path)


def test_pickle_is_never_unpickled(tmp_path) -> None:
    _, path = saved(tmp_path)
    torch.save(tiny_network("nafnet_adain", 4).state_dict(), path)  # a pickle under the safetensors name
    card = json.loads(card_path(path).read_text())
    card["sha256"] = sha256_file(path)
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="not a safetensors file .*torch.save"):
        load_network("nafnet_adain", 4, path)


def test_wrong_backbone_or_scale(tmp_path) -> None:
    _, path = saved(tmp_path)
    with pytest.raises(WeightsError, match="holds nafnet_adain x4 weights"):
        load_network("nafnet_adain", 2, path)
    with pytest.raises(WeightsError, match="holds nafnet_adain x4 weights"):
        load_network("lite", 4, path)
    with pytest.raises(ValueError, match="classic backbone"):
        load_network("guided_filter", 4, path)


def test_bad_cards(tmp_path) -> None:
    _, path = saved(tmp_path)
    card_path(path).write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        read_card(path)
    card_path(path).write_text(json.dumps({"backbone": "lite", "scale": 3, "sha256": "0" * 64}))
    with pytest.raises(WeightsError, match="invalid value for scale"):
        read_card(path)
    card_path(path).write_text(json.dumps({"backbone": "lite", "scale": 4, "sha256": "0" * 64, "colour": 1}))
    with pytest.raises(WeightsError, match=r"unknown fields \['colour'\]"):
        read_card(path)


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    directory = tmp_path / "models"
    directory.mkdir()
    monkeypatch.setattr(zoo, "model_dirs", lambda: [directory])
    return directory


def test_no_shipped_weights_lists_what_works(model_dir) -> None:
    with pytest.raises(FileNotFoundError, match="no weights for nafnet_adain x4.*Shipped: none.*guided_filter"):
        load_network("nafnet_adain", 4)
    assert zoo.default_backbone(4) == ("guided_filter", None)
    assert zoo.default_backbone(16) == ("guided_filter", None)
    assert zoo.default_backbone(2) == ("bicubic", None)  # no guided filter beat bicubic at x2


def test_zoo_picks_the_lowest_validation_rmse(model_dir) -> None:
    fast = {zoo.SPEED_METRIC: zoo.MIN_AUTO_FPS}  # auto's speed bar (test_auto_choice.py has the rule's cases)
    saved(model_dir, stem="good", metrics={"val_rmse": 0.02, **fast})
    saved(model_dir, stem="worse", metrics={"val_rmse": 0.05, **fast})
    saved(model_dir, stem="unscored")
    saved(model_dir, "gta_dinov2", 4, stem="needs_vit", metrics={"val_rmse": 0.001, **fast})
    (model_dir / "orphan.card.json").write_text("{}")  # no weights beside it: skipped
    assert len(zoo.shipped_weights()) == 4
    assert zoo.default_backbone(4) == ("nafnet_adain", model_dir / "good.safetensors")
    assert zoo.default_backbone(2) == ("bicubic", None)
    assert zoo.find_weights("gta_dinov2", 4) == model_dir / "needs_vit.safetensors"
    assert isinstance(load_network("nafnet_adain", 4), torch.nn.Module)


def test_model_dirs_honour_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DEPTH_SR_MODELS", str(tmp_path))
    assert zoo.model_dirs()[0] == tmp_path.resolve()


def edited_card(path, **config) -> None:
    """Change the card's config beside `path` (its sha256 still matches the weights file)."""
    card = json.loads(card_path(path).read_text())
    card["config"].update(config)
    card_path(path).write_text(json.dumps(card))


OVERSIZE_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))  # building the card's network needs 7.9 GB
from depth_sr_ros.models.weights import WeightsError, load_network
try:
    load_network("lite", 4, sys.argv[1])
except WeightsError as err:
    print("WeightsError:", err)
print("peak MiB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_a_card_asking_for_a_network_larger_than_its_file_is_refused_before_any_is_built(tmp_path) -> None:
    """The card's config is checked against the tensor shapes in the file's header (a build on the
    meta device): a lite of width 4096 (7.9 GB of weights) is refused under a 2 GiB data limit."""
    _, path = saved(tmp_path, "lite", 4)
    edited_card(path, width=4096)
    done = subprocess.run([sys.executable, "-c", OVERSIZE_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WeightsError:" in done.stdout and "does not fit the network its card describes" in done.stdout
    assert "file (8,) vs network (4096,)" in done.stdout
    peak_mib = int(done.stdout.split("peak MiB")[1])
    assert peak_mib < 1500, f"{peak_mib} MiB spent before the error (torch itself takes about 400)"


def test_a_card_asking_for_millions_of_blocks_is_stopped_while_planning(tmp_path, monkeypatch) -> None:
    _, path = saved(tmp_path, "lite", 4)
    edited_card(path, dilations=[1] * 1_000_000)
    with pytest.raises(WeightsError, match=r"asks for a network of more than \d+ (tensors|modules); net.safetensors "
                                           r"holds \d+ tensors"):
        load_network("lite", 4, path)


@pytest.mark.parametrize(("config", "named"), [
    ({"colour": "red"}, "colour"),  # an unknown key
    ({"width": "wide"}, "wide"),  # a value of the wrong type
    ({"width": -4}, "negative"),
])
def test_a_card_config_the_network_does_not_take_is_one_weights_error(tmp_path, config, named) -> None:
    _, path = saved(tmp_path, "lite", 4)
    edited_card(path, **config)
    with pytest.raises(WeightsError, match=r"net.card.json: its config .* does not build the network \(") as err:
        load_network("lite", 4, path)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_a_header_that_claims_more_bytes_than_the_file_has_is_corrupt(tmp_path) -> None:
    _, path = saved(tmp_path, "lite", 4)
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [100000, 100000]  # 40 GB claimed for the same bytes
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length:])
    with pytest.raises(WeightsError, match=rf"truncated or corrupt .*tensor '{name}' of shape \[100000, 100000\]"):
        tensor_shapes(path)
