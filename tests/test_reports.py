"""lab_utils.reports: the Markdown tables of loss terms the notebooks show."""

from __future__ import annotations

import pytest

from lab_utils.reports import final_losses, likelihood_table, loss_table


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


def test_likelihood_table_says_which_scores_are_log_likelihoods_and_lists_published_ones():
    figures = {
        "negative_elbo": 140.04,
        "negative_log_px": 137.26,
        "standard_error": 0.84,
        "images": 1000,
        "samples": 1000,
    }
    rows = [
        {"name": "grey", "likelihood": "bernoulli", "binary": False, **figures},
        {"name": "binary", "likelihood": "bernoulli", "binary": True, **figures},
        {"name": "cb", "likelihood": "continuous_bernoulli", "binary": False, **figures},
    ]
    table = likelihood_table(rows, {"VAE, Burda et al. 2016": 86.76}).splitlines()
    assert table[2] == (
        "| grey | 1,000 grey | bernoulli | no: a cross-entropy on grey pixels "
        "| 140.0 | 137.3 ± 0.8 (K = 1,000) |"
    )
    assert "yes: a probability of binary images" in table[3] and "binarised" in table[3]
    assert "yes: a density on grey pixels" in table[4] and "continuous bernoulli" in table[4]
    assert (
        table[5] == "| VAE, Burda et al. 2016 | 10,000 binarised | bernoulli | yes (published) | — | 86.76 |"
    )


def test_kl_split_table_shows_each_part_and_the_ceiling():
    from lab_utils.reports import kl_split_table

    table = kl_split_table(
        {
            "lab": {
                "average_kl": 5.5,
                "mutual_information": 4.25,
                "marginal_kl": 1.25,
                "information_ceiling": 9.21,
            }
        }
    )
    assert "| lab | 5.50 | 4.25 | 1.25 | 9.21 |" in table
    assert "q(z\\|x)" in table  # the | of q(z|x) is escaped, or it splits the cell


def test_sampler_table_gives_each_digits_share_of_the_set():
    import numpy as np

    from lab_utils.reports import sampler_table

    row = {
        "name": "lab",
        "sampler": "prior",
        "digit_counts": np.array([1, 0, 0, 0, 0, 0, 0, 0, 1, 2]),
        "mean_confidence": 0.7,
        "frechet_distance": 150.0,
        "nearest_train_distance": 5.0,
        "nearest_train_distance_1pct": 2.5,
    }
    line = sampler_table([row]).splitlines()[-1]
    assert (
        line.startswith("| lab | prior | 25.0% | 0.0% |") and "| 50.0% | 0.70 | 150.0 | 5.00 | 2.50 |" in line
    )
