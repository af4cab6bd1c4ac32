"""lab_utils.reports: the Markdown tables of loss terms the notebooks show."""

from __future__ import annotations

import pytest

from lab_utils.reports import final_losses, loss_table


def test_final_losses_and_table_report_the_last_epoch():
    history = {"loss": [170.0, 160.25], "reconstruction_loss": [165.0, 154.5], "kl_loss": [5.0, 5.75]}
    history |= {f"val_{key}": [value + 1 for value in values] for key, values in history.items()}
    assert final_losses(history)["val_kl_loss"] == 6.75
    table = loss_table(history).splitlines()
    assert table[2] == "| negative ELBO (total) | 160.25 | 161.25 |"
    assert table[4] == "| KL(q(z\\|x) ‖ p(z)) | 5.75 | 6.75 |"


def test_table_without_validation_shows_a_dash():
    assert loss_table({"loss": [1.0], "reconstruction_loss": [0.5], "kl_loss": [0.5]}).endswith("0.50 | — |")


def test_final_losses_rejects_non_history():
    with pytest.raises(ValueError, match="'loss' entry"):
        final_losses({"accuracy": [1.0]})
