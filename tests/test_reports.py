"""lab_utils.reports: the Markdown tables of loss terms the notebooks show."""

from __future__ import annotations

import pytest

from lab_utils.reports import (
    copying_check,
    dimension_table,
    final_losses,
    hardest_and_easiest_digit,
    likelihood_table,
    loss_table,
    memorisation_check,
)


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
    assert "a density on [0, 1], not a probability: unbounded on pixels at exactly 0" in table[4]
    assert "continuous bernoulli" in table[4] and "yes" not in table[4]
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


def test_hardest_and_easiest_digit_says_how_much_of_the_gap_the_floor_explains():
    errors = {digit: 100.0 for digit in range(10)} | {2: 192.0, 1: 62.5}
    floors = {digit: 40.0 for digit in range(10)} | {2: 50.0, 1: 25.6}
    sentence = hardest_and_easiest_digit(errors, floors)
    assert sentence.startswith("Digit **2** is the hardest to reconstruct (192.0 nats) and digit **1** the")
    assert "are 50.0 and 25.6 nats: they explain 24.4 of the 129.5-nat gap; above the floor" in sentence
    assert sentence.endswith("it is still 105.1 nats.")


def test_copying_check_gives_the_three_sets_and_does_not_claim_to_rule_copying_out():
    results = {
        key: {"nearest_train_distance": mean, "nearest_train_distance_1pct": low}
        for key, mean, low in (
            ("generated", 4.82, 2.56),
            ("originals", 4.26, 1.25),
            ("reconstructions", 4.34, 1.68),
        )
    }
    sentence = copying_check(results, 2000)
    assert (
        "(the first 2,000 images of each set): generated digits 4.82 on average (closest 1 %: 2.56)"
        in sentence
    )
    assert "real test digits 4.26 (1.25), their reconstructions 4.34 (1.68)" in sentence
    assert sentence.endswith("this check cannot rule out copying.") and "no sign of copying" not in sentence
    assert (
        "farther from the training set than their originals in the closest 1 % (1.68 against 1.25)"
        in sentence
    )
    results["reconstructions"]["nearest_train_distance_1pct"] = 1.0
    closer = copying_check(results, 2000)
    assert (
        "sit no farther from the training set than their originals in the closest 1 % (1.00 against" in closer
    )
    assert (
        closer.endswith("this check cannot rule out copying.")
        and "farther from the training set than" in closer
    )


def _gap(difference: float, error: float) -> dict:
    return {
        "train": 150.0,
        "heldout": 150.0 + difference,
        "gap": difference,
        "standard_error": error,
        "train_images": 10_000,
        "heldout_images": 10_000,
    }


def test_memorisation_check_has_a_verdict_for_each_side_of_three_standard_errors():
    gaps = {"A": _gap(3.1, 1.0), "B": _gap(2.9, 1.0), "C": _gap(-3.1, 1.0), "D": _gap(-2.9, 1.0)}
    sentences = memorisation_check(gaps)
    assert sentences.startswith("Memorisation check (negative ELBO of each image, 10,000 training images")
    assert "A: training images score 3.1 ± 1.0 nats better than test images (150.0 against 153.1" in sentences
    assert "B: the gap is +2.9 ± 1.0 nats (150.0 against 152.9 nats), no difference this" in sentences
    assert "C: test images score 3.1 ± 1.0 nats better than training images" in sentences
    assert "D: the gap is -2.9 ± 1.0 nats" in sentences
    assert (
        sentences.count("no sign that it memorised") == 2
        and sentences.count("at its extreme memorisation.") == 1
    )


def test_dimension_table_gives_each_models_terms_and_its_least_and_most_used_dimension():
    import numpy as np

    rows = {
        "latent 20": {
            "negative_elbo": 106.6,
            "reconstruction_loss": 81.67,
            "kl_loss": 24.93,
            "kl": np.array([0.73, 2.5, 1.0]),
            "active": np.array([True, True, False]),
        }
    }
    assert (
        dimension_table(rows).splitlines()[2]
        == "| latent 20 | 106.60 | 81.67 | 24.93 | 2 of 3 | 0.73 / 2.50 |"
    )
