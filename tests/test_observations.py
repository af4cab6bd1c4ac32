"""lab_utils.observations: each computed sentence, and every branch of each judgement."""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils.observations import (
    _against,
    binary_observation,
    bound_observation,
    bullets,
    collapse_observation,
    comparison_observations,
    conditional_verdict,
    continuous_bernoulli_parts,
    experiments_observations,
    holes_observation,
    kl_split_observation,
    latent_space_observations,
    likelihood_observations,
    prior_and_mixture_observation,
    remedies_observation,
    shared_regions_observation,
    spread_comparison,
    training_observations,
    wider_code_observation,
)


def _row(negative_elbo, kl=5.0, **extra):
    return {
        "negative_elbo": negative_elbo,
        "kl_loss": kl,
        "reconstruction_loss": negative_elbo - kl,
        "frechet_distance": 100.0,
        "train_seconds": 40.0,
        "accuracy": 0.99,
        "log_px": -negative_elbo + 2,
        "beta": 1.0,
        "mean_confidence": 0.7,
        "digits_covered": 7,
        **extra,
    }


def _experiment_rows(beta_half=156.1, conv=155.0):
    return {
        "dense, latent 2": _row(156.0),
        "dense, latent 20": _row(106.0, kl=24.5),
        "β = 0.5": _row(beta_half, kl=6.7, beta=0.5),
        "β = 4": _row(160.0, kl=3.3, beta=4.0),
        "conv, latent 2": _row(conv),
        "conditional, latent 2": _row(136.3),
    }


def test_experiments_say_within_or_beyond_the_seed_spread_and_name_the_best_beta_unless_tied():
    spread = {"negative_elbo": 1.1, "frechet_distance": 14.1, "log_px": 1.7, "mean_confidence": 0.04}
    text = experiments_observations(_experiment_rows(), spread)
    assert "The lowest −ELBO is **β = 1**'s; β = 0.5 and β = 1 differ by 0.1 nats, within the seed" in text
    assert "a difference of 1.0 nats, within the seed-to-seed spread" in text
    beyond = experiments_observations(_experiment_rows(conv=154.0), spread)
    assert "a difference of 2.0 nats, beyond the seed-to-seed spread" in beyond
    tie = experiments_observations(_experiment_rows(beta_half=156.0), spread)
    assert "The lowest −ELBO" not in tie and "differ by 0.0 nats, within" in tie
    assert text.startswith("- **Latent dimension.** Going from 2 to 20") and text.count("\n- ") == 3


def test_spread_comparison_says_better_or_worse_and_within_about_or_beyond_for_each_measure():
    dense = _row(156.0) | {"log_px": -153.6, "frechet_distance": 142.3, "mean_confidence": 0.66}
    spread = {"log_px": 1.7, "frechet_distance": 14.1, "mean_confidence": 0.038}
    conv = _row(155.0) | {"log_px": -151.8, "frechet_distance": 120.4, "mean_confidence": 0.77}
    assert spread_comparison(conv, dense, spread) == (
        "Against the dense model, each against the dense model's seed spread: IWAE −log p(x) better by 1.8 "
        "(about the size of its spread of 1.7); FD better by 21.9 (beyond its spread of 14.1); sample "
        "confidence better by 0.11 (beyond its spread of 0.04)."
    )
    close = _row(155.0) | {"log_px": -154.6, "frechet_distance": 142.3, "mean_confidence": 0.664}
    assert spread_comparison(close, dense, spread).endswith(
        "IWAE −log p(x) worse by 1.0 (within its spread of 1.7); FD the same; sample confidence the same."
    )


def test_a_difference_is_within_about_the_size_of_or_beyond_a_seed_spread():
    assert [_against(d, 1.0) for d in (-0.5, 1.4, 1.6)] == ["within", "about the size of", "beyond"]
    assert _against(1.0, 1.0) == "within" and _against(-1.5, 1.0) == "about the size of"
    assert _against(1.51, 1.0) == "beyond"


def test_the_conditional_verdict_has_three_outcomes():
    # 19.3 nats ahead; the label's log 10 = 2.3 explains little of it
    assert "still 17.0 nats below the unconditional model: most of the gap is not" in conditional_verdict(
        -153.6, -134.3
    )
    assert "which leaves at most half the gap" in conditional_verdict(-153.6, -152.0)  # 1.6 ahead, < 2.3
    assert conditional_verdict(-153.6, -154.0).endswith("scores no better even before the label is counted.")


def test_continuous_bernoulli_parts_split_the_loss_at_exact_zeros():
    originals = np.array([[0.0, 0.0, 0.5, 1.0]], "float32")
    zero, rest = continuous_bernoulli_parts(originals, np.full_like(originals, 0.01))
    assert zero < 0 < rest  # the density at exact 0 with λ = 0.01 is far above 1: negative nats
    whole = continuous_bernoulli_parts(originals[:, 2:], np.full((1, 2), 0.01, "float32"))
    assert whole[0] == 0 and whole[1] == pytest.approx(rest, rel=1e-5)


def _likelihood_figures(binary_elbo=158.6, deep=95.1):
    return {
        "lab": {"negative_log_px": 155.4},
        "continuous Bernoulli": {"negative_log_px": -1459.0},
        "binarised": {"negative_elbo": binary_elbo, "negative_log_px": 156.2},
        "deeper": {"negative_log_px": deep},
    }


def test_likelihood_observations_say_which_way_the_gaps_go():
    sets = {"originals": np.array([[0.0, 0.5, 1.0, 1.0]]), "Bernoulli λ": np.array([[0.2, 0.5, 0.8, 0.95]])}
    text = likelihood_observations(_likelihood_figures(), 45.4, sets, (-1501.0, 35.7), 10)
    assert "loose there by at least the gap between them, 2.4 nats" in text
    assert "gives 95.1 nats (61.1 nats below the lab architecture) after 10 epochs" in text
    assert "share of pixels strictly between 0.1 and 0.9: originals 25.0%, Bernoulli λ 75.0%." in text
    assert "same images: Bernoulli λ 0.113." in text and "contribute -1501.0 nats per image" in text
    odd = likelihood_observations(_likelihood_figures(binary_elbo=155.0, deep=160.0), 45.4, sets, (0, 0), 10)
    assert "the IWAE estimate came out 1.2 nats above the −ELBO" in odd
    assert "(3.8 nats above the lab architecture)" in odd


def test_kl_split_and_holes_sentences():
    splits = {
        "latent 2": {
            "average_kl": 5.6,
            "mutual_information": 4.9,
            "marginal_kl": 0.7,
            "information_ceiling": 9.21,
        },
        "latent 8": {
            "average_kl": 15.8,
            "mutual_information": 9.02,
            "marginal_kl": 6.78,
            "information_ceiling": 9.21,
        },
        "latent 20": {
            "average_kl": 24.9,
            "mutual_information": 9.08,
            "marginal_kl": 15.85,
            "information_ceiling": 9.21,
        },
    }
    text = kl_split_observation(splits, 10_000)
    assert "within 0.19 nats of its ceiling, log 10,000 = 9.21" in text
    assert "(6.78 nats for latent 8, 15.85 nats for latent 20)" in text
    draws = np.array([-3.0, -1.0, 0.5, 1.0])  # one below log(1/10) = -2.30, two below 0
    holes = holes_observation(draws, np.log([0.11, 1.0, 2.8]), 0.35)
    assert "1 of the lab model's 4 prior draws (25.0%) land where q(z) is below a tenth" in holes
    assert (
        "and 50% where it is below p(z)" in holes
        and "from 0.11 to 2.8" in holes
        and "35% of the codes" in holes
    )


def _judged(shares, fd=100.0):
    return {"digit_counts": np.asarray(shares) * 1000, "mean_confidence": 0.7, "frechet_distance": fd}


PRIOR = [11.8, 4.7, 6.2, 5.2, 0.1, 0.0, 10.3, 8.8, 34.3, 18.6]
MIXTURE = [10.8, 11.8, 6.3, 6.8, 0.1, 0.0, 11.6, 12.3, 25.1, 15.2]


def test_prior_and_mixture_name_the_digits_that_moved_and_those_still_rare():
    text = prior_and_mixture_observation(_judged(PRIOR), _judged(MIXTURE))
    assert text.endswith("moves the shares of 1s, 8s and 9s towards the data's, but 4s and 5s stay rare.")
    even = [10.0] * 10
    assert prior_and_mixture_observation(_judged(even), _judged(even)).endswith(
        "moves no digit's share 2 points closer to 10 %."
    )


def test_shared_regions_name_the_two_commonest_readings():
    read_as = {digit: np.eye(10)[digit] for digit in range(10)}
    read_as[4] = np.array([0, 0, 0, 0, 0.0, 0, 0, 0.25, 0.11, 0.64])
    text = shared_regions_observation(np.full(10, 0.1), np.full(10, 0.1), read_as)
    assert "test 4s are read 0% as 4s, 64% as 9s and 25% as 7s; 5s 100% as 5s" in text


def test_wider_code_says_lowers_only_when_every_fd_fell():
    rows = {
        ("latent 8", "prior N(0, I)"): _judged([10.0] * 10, fd=69.0),
        ("latent 8", "mixture on μ(x)"): _judged([10.0] * 10, fd=29.3),
        ("latent 20", "prior N(0, I)"): _judged([10.0] * 10, fd=55.8),
        ("latent 20", "mixture on μ(x)"): _judged([10.0] * 10, fd=16.8),
    }
    text = wider_code_observation(rows, ["latent 8", "latent 20"])
    assert "lowers the FD from 69.0 to 29.3 (latent 8) and from 55.8 to 16.8 (latent 20)." in text
    rows[("latent 20", "mixture on μ(x)")] = _judged([10.0] * 10, fd=60.0)
    assert "changes the FD from 69.0" in wider_code_observation(rows, ["latent 8", "latent 20"])


def _use(kl, active=None):
    kl = np.asarray(kl, dtype=float)
    return {"kl": kl, "active": np.ones(len(kl), bool) if active is None else np.asarray(active)}


def test_collapse_says_none_collapsed_only_when_every_dimension_is_used():
    used = collapse_observation({"latent 8": _use([0.8, 2.0]), "latent 20": _use([0.73, 1.0])})
    assert used.endswith("costs at least 0.73 nats of KL: in this run no dimension collapsed.")
    collapsed = collapse_observation({"latent 8": _use([0.05, 2.0], [False, True]), "latent 20": _use([1.0])})
    assert "under 0.1 nats of KL: latent 8 1 of 2, latent 20 0 of 1" in collapsed
    assert collapsed.endswith("they barely move with the image): 1 and 0.")


def _remedy(negative_elbo, kl, active=None, kl_loss=25.0):
    return _row(negative_elbo, kl=kl_loss) | _use(kl, active)


def test_remedies_say_there_is_nothing_to_bring_back_only_without_collapse():
    rows = {
        "latent 20": _remedy(106.60, [0.73, 2.0], kl_loss=24.93),
        "latent 20, KL warm-up (3 epochs)": _remedy(107.26, [0.65, 2.0], kl_loss=25.24),
        "latent 20, free bits (λ = 1 nat)": _remedy(107.09, [0.98, 2.0], kl_loss=25.42),
    }
    text = remedies_observation(rows)
    assert "KL warm-up (3 epochs) +0.66 nats, free bits (λ = 1 nat) +0.49 nats" in text
    assert "nothing to bring back: they barely change the total KL (24.93–25.42 nats)" in text
    rows["latent 20"] = _remedy(106.60, [0.05, 2.0])
    assert remedies_observation(rows).endswith(
        "The plain model has 1 dimensions under 0.1 nats; the table shows each remedy's."
    )


def test_binary_observation_counts_collapsed_dimensions_and_what_the_activity_rule_misses():
    rows = {
        "binarised, latent 32": _remedy(101.35, [0.05, 0.02, 2.0], [True, False, True], kl_loss=22.36),
        "binarised, KL warm-up (3 epochs)": _remedy(100.97, [0.5, 0.02, 2.0], kl_loss=26.30),
        "binarised, free bits (λ = 1 nat)": _remedy(105.52, [1.0, 1.13, 2.0], kl_loss=34.06),
    }
    text = binary_observation(rows, [0.73, 1.0], 1.0)
    assert "2 of 3 dimensions pass the activity rule (Cov > 0.01), but 2 cost under 0.1 nats" in text
    assert "against 0 such dimensions in grey latent 20" in text and "would miss 1 of them" in text
    assert "plain / warm-up / free bits: 2 / 1 / 0" in text and "KL warm-up (3 epochs) −0.38 nats" in text
    assert "up to 3 nats in all cost the training loss nothing" in text and "changes by +4.17." in text
    rows["binarised, latent 32"] = _remedy(101.35, [0.05, 0.02, 2.0], [False, False, True], kl_loss=22.36)
    assert "prior. Dimensions under" in binary_observation(rows, [0.73], 1.0)  # the rule misses none
    rows["binarised, latent 32"] = _remedy(101.35, [0.5, 0.2, 2.0], kl_loss=22.36)
    assert "No dimension costs under 0.1 nats of KL. Dimensions" in binary_observation(rows, [0.73], 1.0)


def test_bound_observation_says_whether_the_refined_proposal_tightened_the_estimate():
    gains = np.array([2.0, 3.0, 3.28])
    counts, bounds = [1, 10, 5000], [155.51, 154.0, 153.03]
    text = bound_observation(200, 155.34, counts, bounds, gains, 152.47, 1000)
    assert "falls from 155.51 (K = 1) to 153.03 (K = 5,000)" in text
    assert "raises its ELBO by 2.76 ± 0.39 nats, so its −ELBO falls to 152.58" in text
    assert (
        "IWAE reaches 152.47 with K = 1,000: 0.56 nats below" in text
        and "tightest figure here is 152.47" in text
    )
    looser = bound_observation(200, 155.34, counts, bounds, gains, 153.5, 1000)
    assert (
        "IWAE gives 153.50 with K = 1,000, no tighter" in looser
        and "tightest figure here is 152.58" in looser
    )
    flat = bound_observation(200, 155.34, counts, [153.0, 153.1, 153.2], gains, 153.5, 1000)
    assert "does not fall from 153.00" in flat


def test_bullets_make_a_markdown_list():
    assert bullets("a", "b") == "- a\n- b"


def _history(train, test, reconstruction=140.0, kl=6.0):
    return {"loss": train, "val_loss": test, "val_reconstruction_loss": [reconstruction] * len(test),
            "val_kl_loss": [kl] * len(test)}


def test_training_observations_read_the_gap_between_test_and_training_loss():
    close = training_observations(_history([170.0, 150.0], [152.0, 150.5]), 543.0, 80.0, 60_000)
    assert "After **2 epochs** on 60,000 images, the test-set negative ELBO is **150.5 nats" in close
    assert "**+0.50 nats**: no sign of overfitting" in close and "the other 60.0 nats" in close
    assert "from 543.0 to 152.0 nats; the remaining 1 epochs lower it by 1.5 nats more." in close
    apart = training_observations(_history([140.0], [145.0]), 543.0, 80.0, 5_000)
    assert "**+5.00 nats**: the model fits its training images better" in apart and "nats more" not in apart


def test_latent_space_observations_name_the_closest_clouds_and_the_share_outside_the_disc():
    labels = np.repeat(np.arange(10), 20)
    centres = np.array([[digit * 1.0, 0.0] for digit in range(10)])
    centres[7] = [6.3, 0.0]  # 6 and 7 closest
    z_mean = centres[labels] + np.random.default_rng(0).normal(0, 0.01, (200, 2))
    said = latent_space_observations(z_mean, np.full((200, 2), np.log(0.04)), labels)
    assert said.startswith("- The closest digit clouds are **6–7**, ")
    assert "farthest apart are **0–9**" in said
    assert f"{np.mean(np.linalg.norm(z_mean, axis=1) > 2.5):.1%} of test codes lie farther than 2.5" in said
    assert "the prior puts 4.4% of its samples" in said and "standard deviation (0.200, 0.200)" in said


def test_comparison_observations_compute_each_figure_from_the_results():
    judged = {"accuracy": 0.9, "mean_confidence": 0.8, "frechet_distance": 10.0,
              "digit_counts": np.full(10, 10)}
    results = {"originals": {**judged, "accuracy": 0.99, "frechet_distance": 0.0},
               "reconstructions": judged,
               "generated": {**judged, "digit_counts": np.array([30, 0, 10, 10, 10, 10, 10, 10, 10, 0])}}
    said = comparison_observations(
        {"negative_elbo": 150.0}, {"images": 1000, "negative_elbo": 151.0, "negative_log_px": 146.5},
        {"no_code": 206.0, "floor": 80.0}, results, 2.5,
        np.r_[np.zeros(12, int), np.arange(1, 10).repeat(11)],  # 0 is 12 of 111 test images, the others 11
        "HARDEST", ["COPYING", "MEMORY"],
    ).splitlines()
    assert "loose by at least 4.5 nats" in said[0] and "56.0 nats below the no-code figure (206.0)" in said[1]
    assert said[2] == "- HARDEST" and said[-2:] == ["- COPYING", "- MEMORY"]
    assert "most common class is **0** (30.0%) and the rarest **1** (0.0%)" in said[4]
    assert "each digit is 9.9%–10.8% of the real test images" in said[4]
