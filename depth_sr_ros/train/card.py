"""The model card of the weights a training run writes (`OUT/<backbone>_x<scale>.card.json`):
its data and their terms, the recipe, the device, the steps and minutes so far, and the
validation figures when the run had validation sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from depth_sr_ros.train.config import TrainConfig


def training_card(config: TrainConfig, state: dict[str, Any], device: str, final: bool):
    """The model card of the weights a run writes: data and its terms, recipe, device, and the
    validation figures when the run had validation sets."""
    from depth_sr_ros.models.weights import ModelCard

    sources = []
    for s in config.train:
        mix = ", ".join(f"{n} {p:g}" for n, p in (s.degradations or config.degradations).items())
        what = f"split {s.split}" if s.split != "all" else (s.scenes or "all")
        sources.append(f"{Path(s.root).name} {what} (weight {s.weight}; inputs: {mix})")
    if config.synthetic_scenes:
        sources.append(f"{config.synthetic_scenes} synthetic scenes (weight {config.synthetic_weight})")
    if config.second_pass_of:
        sources.append(f"given: the second-pass input of {config.second_pass_of}, {config.second_pass_poses} "
                       f"simulated sensors per frame ({', '.join(config.second_pass_sensors)})")
    terms = sorted({s.terms for s in config.train if s.terms})
    minutes = state["elapsed_s"] / 60.0
    throughput = state.get("throughput", {})
    recipe = (f"{state['step']} steps of {config.batch} x {config.patch}px crops in {minutes:.1f} min"
              + (f" ({throughput['samples_per_s']:.0f} samples/s)" if throughput else "")
              + f", {config.loss}, AdamW lr {config.lr:g} -> {config.min_lr:g} (cosine to the end of the "
              f"{'time budget' if config.time_budget_s else 'steps'}), range jitter {config.range_jitter:g}, "
              f"seed {config.seed}" + (f"; fine-tuned from {config.init_weights}" if config.init_weights else ""))
    validation = state.get("validation", {})
    metrics = {f"train_val_{label}_rmse": value for label, value in validation.items()}
    protocol = ("gdsr (PROTOCOL.md), mean per-image RMSE, on " + ", ".join(validation)
                + f"; weights: {'the best checkpoint on the first set' if config.select == 'best' else 'the last step'}"
                if validation else "not evaluated during training: run depth-sr evaluate (docs/training.md)")
    notes = [n for n in (config.card.get("notes", ""),) if n]
    if not final:
        notes.append(f"checkpoint written during training at step {state['step']} ({minutes:.1f} min); the run "
                     "had not finished")
    if terms:
        notes.append("data terms: " + " | ".join(terms))
    extra = {k: v for k, v in config.card.items() if k != "notes"}
    if config.second_pass_of:  # the network whose second pass these weights take (ModelCard.second_pass_for)
        from depth_sr_ros.models.card import read_card

        extra.setdefault("second_pass_for", read_card(config.second_pass_of).sha256)
    trained_on = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    return ModelCard(
        backbone=config.backbone,
        scale=config.scale,
        training_data=f"{'; '.join(sources)}. {recipe}",
        evaluation_protocol=protocol,
        metrics=metrics,
        trained_on=trained_on,
        notes="\n".join(notes),
        **extra,
    )
