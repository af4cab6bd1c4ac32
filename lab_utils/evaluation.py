"""Figures that compare reconstructions and samples with the originals, in nats per image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

TERMS = (
    ("loss", "negative ELBO (total)"),
    ("reconstruction_loss", "reconstruction −log p(x|z)"),
    ("kl_loss", "KL(q(z|x) ‖ p(z))"),
)


def final_losses(history: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Return the last epoch's value of every logged loss term."""
    logs = getattr(history, "history", history)
    if "loss" not in logs:
        raise ValueError("history must be a Keras History or its .history dict with a 'loss' entry.")
    return {key: float(values[-1]) for key, values in logs.items()}


def loss_table(history) -> str:
    """Return a Markdown table of the last epoch's train and validation loss terms (nats per image)."""
    last = final_losses(history)
    rows = ["| term | train | validation (test set) |", "| --- | ---: | ---: |"]
    for key, label in TERMS:
        validation = last.get(f"val_{key}")
        shown = f"{validation:.2f}" if validation is not None else "—"
        escaped = label.replace("|", "\\|")  # a bare | would split the Markdown cell
        rows.append(f"| {escaped} | {last[key]:.2f} | {shown} |")
    return "\n".join(rows)
