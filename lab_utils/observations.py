"""The computed Observations of notebooks 02 to 07: each sentence from the run's own figures.

Every function takes the figures a notebook measured and returns Markdown. A sentence that
judges (within the noise or beyond it, a gap or none) has a branch for each outcome, and
tests/test_observations.py runs every branch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lab_utils.losses import reconstruction_loss

LOW_KL = 0.1  # nats: a dimension whose average KL is below this is (nearly) collapsed


def bullets(*sentences: str) -> str:
    """A Markdown list, one item per sentence."""
    return "\n".join(f"- {sentence}" for sentence in sentences)


def _and_list(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def _rounded_gap(a: float, b: float, digits: int) -> float:
    """a − b as the two figures are shown (rounded to `digits`), so text and table agree."""
    return round(round(a, digits) - round(b, digits), digits)


def _shown_difference(row: Mapping, base: Mapping, key: str = "negative_elbo", digits: int = 2) -> float:
    """The difference of a figure of two table rows, as the table shows them."""
    return _rounded_gap(row[key], base[key], digits)


def _against(difference: float, spread: float) -> str:
    """Where a difference sits against a seed-to-seed spread (max − min over a few seeds, itself
    noisy): within it, about its size (up to 1.5 times it: not clearly beyond noise), or beyond."""
    if abs(difference) <= spread:
        return "within"
    return "about the size of" if abs(difference) <= 1.5 * spread else "beyond"


# Notebooks 02, 03 and 04 ------------------------------------------------------------------


OVERFIT_GAP = 1.0  # nats: a test loss this much above the training loss is read as overfitting


def training_observations(
    history: Mapping[str, Sequence[float]], untrained_loss: float, floor: float, train_images: int
) -> str:
    """Notebook 02's Observations: the final losses, what the grey-pixel `floor` explains of the
    reconstruction term, the test-minus-training gap, and what the epochs after the first added."""
    loss, test = history["loss"], history["val_loss"]
    reconstruction, kl = history["val_reconstruction_loss"][-1], history["val_kl_loss"][-1]
    gap = test[-1] - loss[-1]
    verdict = (
        "no sign of overfitting (the model does as well on unseen test images)"
        if gap <= OVERFIT_GAP
        else "the model fits its training images better than unseen ones: a sign of overfitting"
    )
    later = (
        f"; the remaining {len(test) - 1} epochs lower it by {test[0] - test[-1]:.1f} nats more."
        if len(test) > 1
        else "."
    )
    return bullets(
        f"After **{len(loss)} epochs** on {train_images:,} images, the test-set negative ELBO is "
        f"**{test[-1]:.1f} nats per image** (train: {loss[-1]:.1f}); the untrained model scored "
        f"{untrained_loss:.1f}.",
        f"Reconstruction costs **{reconstruction:.1f} nats** and the KL term **{kl:.2f} nats**. Of the "
        f"reconstruction, {floor:.1f} nats is the grey-pixel floor that no decoder removes (notebook 01); "
        f"the other {reconstruction - floor:.1f} nats are what the 2-number code leaves unexplained.",
        f"Validation minus training loss: **{_signed(gap)} nats**: {verdict}.",
        f"The first epoch takes the test loss from {untrained_loss:.1f} to {test[0]:.1f} nats{later}",
    )


def latent_space_observations(z_mean, z_log_var, labels, radius: float = 2.5) -> str:
    """Notebook 03's Observations on the test codes of a 2-D latent space: which digit clouds lie
    closest and farthest, how the codes spread against the prior, how narrow each posterior is."""
    z_mean, labels = np.asarray(z_mean), np.asarray(labels)
    centroids = np.array([z_mean[labels == digit].mean(axis=0) for digit in range(10)])
    distances = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    pairs = sorted((distances[a, b], a, b) for a in range(10) for b in range(a + 1, 10))
    closest = [f"**{a}–{b}**" for _, a, b in pairs[:3]]
    spread = ", ".join(f"{value:.2f}" for value in z_mean.std(axis=0))
    narrow = ", ".join(f"{value:.3f}" for value in np.exp(0.5 * np.asarray(z_log_var)).mean(axis=0))
    outside = float(np.mean(np.linalg.norm(z_mean, axis=1) > radius))
    prior_outside = float(np.exp(-(radius**2) / 2))  # P(|z| > r) under a 2-D standard normal
    return bullets(
        f"The closest digit clouds are {_and_list(closest)}: in the manifold these digits turn into "
        f"each other. The farthest apart are **{pairs[-1][1]}–{pairs[-1][2]}**.",
        f"The codes spread with standard deviations ({spread}) per dimension, against the prior's 1, and "
        f"{outside:.1%} of test codes lie farther than {radius:g} from the origin, where the prior puts "
        f"{prior_outside:.1%} of its samples. The KL term pulls the codes towards $\\mathcal{{N}}(0, I)$ "
        "but does not make them match it (notebook 07 maps where the two differ).",
        f"Each image's own posterior is narrow (average standard deviation ({narrow})): the encoder is "
        "confident where in the plane an image belongs.",
    )


def comparison_observations(
    elbo: Mapping[str, float],
    first_images: Mapping[str, float],
    references: Mapping[str, float],
    results: Mapping[str, Mapping],
    real_vs_real: float,
    labels,
    hardest_digit: str,
    checks: Sequence[str] = (),
) -> str:
    """Notebook 04's Observations.

    `elbo` holds the test set's `negative_elbo`; `first_images` the negative ELBO and the IWAE
    estimate of −log p(x) on the same first images (`negative_elbo`, `negative_log_px`,
    `images`); `references` the no-code and grey-floor figures (`no_code`, `floor`); `results`
    is `judge.compare_sets`'; `labels` the test images' digits; `hardest_digit` and `checks`
    (the copying and memorisation sentences) are added as they are.
    """
    counts = np.asarray(results["generated"]["digit_counts"])
    share = counts / counts.sum()
    real = np.bincount(np.asarray(labels), minlength=10) / len(labels)
    loose = first_images["negative_elbo"] - first_images["negative_log_px"]
    originals, recon, generated = results["originals"], results["reconstructions"], results["generated"]
    return bullets(
        f"The test negative ELBO is **{elbo['negative_elbo']:.1f} nats** (Bernoulli cross-entropy plus KL). "
        f"On the first {first_images['images']:,} images it is {first_images['negative_elbo']:.1f} and the "
        f"importance-weighted (IWAE) estimate {first_images['negative_log_px']:.1f}, so there the ELBO is "
        f"loose by at least {loose:.1f} nats.",
        f"Against notebook 01's references: the latent code takes the score "
        f"{references['no_code'] - elbo['negative_elbo']:.1f} nats below the no-code figure "
        f"({references['no_code']:.1f}); {references['floor']:.1f} nats of what is left is the grey-pixel "
        "floor no decoder removes.",
        hardest_digit,
        f"The classifier recognises **{recon['accuracy']:.1%}** of reconstructions as the original's digit "
        f"(originals: {originals['accuracy']:.1%}); its confidence drops from "
        f"{originals['mean_confidence']:.3f} on originals to {recon['mean_confidence']:.3f} on "
        f"reconstructions and {generated['mean_confidence']:.3f} on generated digits.",
        f"Among generated digits the most common class is **{int(share.argmax())}** ({share.max():.1%}) "
        f"and the rarest **{int(share.argmin())}** ({share.min():.1%}); each digit is "
        f"{real.min():.1%}–{real.max():.1%} of the real test images.",
        f"Fréchet distance to the originals: reconstructions {recon['frechet_distance']:.1f}, generated "
        f"{generated['frechet_distance']:.1f}. The originals' 0.00 is the set against itself; two real sets "
        f"(as many training images against the originals) are {real_vs_real:.2f} apart.",
        *checks,
    )


# Notebook 05 ---------------------------------------------------------------------------------


def conditional_verdict(unconditional_log_px: float, conditional_log_px: float, classes: int = 10) -> str:
    """How much of the conditional model's lead a label's information can explain (IWAE figures, nats).

    The label carries at most log(classes) nats, so the conditional score is compared with the
    unconditional one both as −log p(x|y) and as the joint −log p(x, y) with a uniform p(y).
    """
    unconditional, conditional = -unconditional_log_px, -conditional_log_px
    gap, joint = unconditional - conditional, conditional + np.log(classes)
    text = (
        f"Its IWAE score given the label (the −log p(x|y) shape) is {conditional:.1f} nats against the "
        f"unconditional model's {unconditional:.1f}: a gap of {gap:.1f} nats. A label carries at most log "
        f"{classes} = {np.log(classes):.1f} nats, so compare like with like: counting the label, the joint "
        f"score (−log p(x, y) shape) is {joint:.1f} nats, "
    )
    if gap <= 0:
        return text + "so the conditional model scores no better even before the label is counted."
    if unconditional - joint > gap / 2:
        return text + (
            f"still {unconditional - joint:.1f} nats below the unconditional model: most of the gap is not "
            "the label's information."
        )
    return text + "which leaves at most half the gap: the label's information accounts for most of it."


SPREAD_MEASURES = {  # the measures notebook 05's seed spread covers: (name, format, sign for "better")
    "log_px": ("IWAE −log p(x)", "{:.1f}", 1),
    "frechet_distance": ("FD", "{:.1f}", -1),
    "mean_confidence": ("sample confidence", "{:.2f}", 1),
}


def spread_comparison(row: Mapping, base: Mapping, spread: Mapping[str, float]) -> str:
    """Each measure of `row` against `base`, and where the difference sits against that measure's
    seed-to-seed spread (measured on the base model's seeds)."""
    parts = []
    for key, (name, number, better) in SPREAD_MEASURES.items():
        digits = int(number[-3])  # "{:.1f}" → 1: the difference of the figures as shown
        difference = _rounded_gap(row[key], base[key], digits)
        if difference == 0:
            parts.append(f"{name} the same")
            continue
        side = "better" if difference * better > 0 else "worse"
        parts.append(
            f"{name} {side} by {number.format(abs(difference))} ({_against(difference, spread[key])} its "
            f"spread of {number.format(spread[key])})"
        )
    return "Against the dense model, each against the dense model's seed spread: " + "; ".join(parts) + "."


def experiments_observations(rows: Mapping[str, Mapping], spread: Mapping[str, float]) -> str:
    """Notebook 05's Observations from its rows (by experiment name) and the seed-to-seed spread."""
    l2, l20 = rows["dense, latent 2"], rows["dense, latent 20"]
    b_low, b_high = rows["β = 0.5"], rows["β = 4"]
    conv, cond = rows["conv, latent 2"], rows["conditional, latent 2"]
    shown = {row["beta"]: round(row["negative_elbo"], 1) for row in (b_low, l2, b_high)}
    lowest = [beta for beta, value in shown.items() if value == min(shown.values())]
    best_beta = (
        f"The lowest −ELBO is **β = {lowest[0]:g}**'s; " if len(lowest) == 1 else ""
    )  # a tie names none
    beta_gap = abs(_shown_difference(b_low, l2, digits=1))
    conv_gap = abs(_shown_difference(conv, l2, digits=1))
    noise = spread["negative_elbo"]
    latent = (
        "**Latent dimension.** Going from 2 to 20 latent dimensions changes the test −ELBO from "
        f"{l2['negative_elbo']:.1f} to {l20['negative_elbo']:.1f} nats; the KL term grows from "
        f"{l2['kl_loss']:.1f} to {l20['kl_loss']:.1f} nats and reconstruction falls from "
        f"{l2['reconstruction_loss']:.1f} to {l20['reconstruction_loss']:.1f}. Fréchet distance of the "
        f"samples: {l2['frechet_distance']:.1f} (latent 2) against {l20['frechet_distance']:.1f} (latent "
        "20)."
    )
    beta = (
        f"**β.** KL term: {b_low['kl_loss']:.1f} (β = 0.5), {l2['kl_loss']:.1f} (β = 1), "
        f"{b_high['kl_loss']:.1f} (β = 4); reconstruction: {b_low['reconstruction_loss']:.1f}, "
        f"{l2['reconstruction_loss']:.1f}, {b_high['reconstruction_loss']:.1f}. {best_beta}β = 0.5 and β = "
        f"1 differ by {beta_gap:.1f} nats, {_against(beta_gap, noise)} the seed-to-seed spread of "
        f"{noise:.1f} nats (section 5). Sample FD: {b_low['frechet_distance']:.1f}, "
        f"{l2['frechet_distance']:.1f}, {b_high['frechet_distance']:.1f}; FD spread between seeds "
        f"{spread['frechet_distance']:.1f}."
    )
    convolutional = (
        f"**Convolutional.** −ELBO {conv['negative_elbo']:.1f} against {l2['negative_elbo']:.1f} for the "
        f"dense model, a difference of {conv_gap:.1f} nats, {_against(conv_gap, noise)} the seed-to-seed "
        f"spread. {spread_comparison(conv, l2, spread)} Digits covered: {conv['digits_covered']}/10 against "
        f"{l2['digits_covered']}/10. {conv['train_seconds']:.0f} s of training against "
        f"{l2['train_seconds']:.0f} s (each timed when that model was trained)."
    )
    conditional = (
        "**Conditional.** Asked for a digit, the conditional VAE draws one the classifier reads as that "
        f"digit {cond['accuracy']:.0%} of the time. {conditional_verdict(l2['log_px'], cond['log_px'])}"
    )
    return bullets(latent, beta, convolutional, conditional)


# Notebook 06 ---------------------------------------------------------------------------------


def continuous_bernoulli_parts(originals, probabilities) -> tuple[float, float]:
    """The continuous Bernoulli −log p(x|z) per image, split into its pixels at exactly 0 and the rest."""
    originals = np.asarray(originals, "float32")
    per_pixel = np.asarray(
        reconstruction_loss(
            originals.reshape(-1, 1),
            np.asarray(probabilities, "float32").reshape(-1, 1),
            "continuous_bernoulli",
        )
    ).reshape(originals.shape)
    background = originals == 0
    zero, rest = (
        float(np.where(mask, per_pixel, 0).sum(axis=1).mean()) for mask in (background, ~background)
    )
    return zero, rest


def likelihood_observations(
    figures: Mapping[str, Mapping],
    floor: float,
    sets: Mapping[str, np.ndarray],
    continuous_parts: tuple[float, float],
    epochs: int,
) -> str:
    """Notebook 06's Observations.

    `figures` maps "lab", "continuous Bernoulli", "binarised" and "deeper" to likelihood rows;
    `floor` is the grey-pixel floor of the images the lab row was scored on; `sets` holds the
    "originals" and their reconstructions by name; `continuous_parts` is
    `continuous_bernoulli_parts` of the originals.
    """
    lab, cb, binary, deep = (figures[key] for key in ("lab", "continuous Bernoulli", "binarised", "deeper"))
    grey = {name: float(np.mean((images > 0.1) & (images < 0.9))) for name, images in sets.items()}
    originals = sets["originals"]
    error = {
        name: float(np.abs(images - originals).mean()) for name, images in sets.items() if name != "originals"
    }
    gap = _rounded_gap(binary["negative_elbo"], binary["negative_log_px"], 1)
    looseness = (
        f"in expectation the ELBO is loose there by at least the gap between them, {gap:.1f} nats"
        if gap > 0
        else f"the IWAE estimate came out {-gap:.1f} nats above the −ELBO: sampling noise, or too few "
        "samples K"
    )
    gain = _rounded_gap(binary["negative_log_px"], deep["negative_log_px"], 1)
    gain_text = f"{abs(gain):.1f} nats {'below' if gain > 0 else 'above'} the lab architecture"
    zero, rest = continuous_parts
    shares = ", ".join(f"{name} {share:.1%}" for name, share in grey.items())
    errors = ", ".join(f"{name} {value:.3f}" for name, value in error.items())
    return bullets(
        f"The lab model's score on grey images is {lab['negative_log_px']:.1f} nats (IWAE), of which "
        f"{floor:.1f} is the grey-pixel floor a perfect decoder still pays: it is a cross-entropy, not "
        "$-\\log p(x)$.",
        f"The same architecture on binarised images: −ELBO {binary['negative_elbo']:.1f}, IWAE "
        f"{binary['negative_log_px']:.1f} nats, an estimate (too high in expectation) of a real negative "
        f"log-probability of the binary test images; {looseness}.",
        f"A deeper network with a 32-number code (Dense 512 → 512) gives {deep['negative_log_px']:.1f} nats "
        f"({gain_text}) after {epochs} epochs; the published VAE reaches 86.76 after 3,280 passes. "
        "`benchmarks/bench_binarised.py` trains this model for longer.",
        f"The continuous Bernoulli model's −log p(x) is {cb['negative_log_px']:.1f} nats: the log-density "
        "of a continuous model evaluated on 8-bit images. Decoded from μ(x), the pixels that are exactly 0 "
        f"contribute {zero:.1f} nats per image to its reconstruction term and all the others {rest:+.1f}: "
        "at x = 0 the density has no upper limit as λ → 0 (the kit caps λ at 1e-6). It is not comparable "
        "with the other rows.",
        f"Over the {len(originals):,} test images of section 4, share of pixels strictly between 0.1 and "
        f"0.9: {shares}.",
        f"Mean absolute pixel error to the originals, same images: {errors}.",
    )


# Notebook 07 ---------------------------------------------------------------------------------


def kl_split_observation(splits: Mapping[str, Mapping[str, float]], images: int) -> str:
    """The KL split of the lab model (the first entry) and of the wider codes (the others)."""
    (_, lab), *wider = splits.items()
    ceiling = lab["information_ceiling"]
    below = max(ceiling - split["mutual_information"] for _, split in wider)
    mismatches = ", ".join(f"{split['marginal_kl']:.2f} nats for {name}" for name, split in wider)
    return (
        f"**The KL term, split.** For the lab model the average KL of {lab['average_kl']:.2f} nats is "
        f"{lab['mutual_information']:.2f} nats of information about the image and {lab['marginal_kl']:.2f} "
        "nats of mismatch between where the codes are and the prior. For the wider codes the information "
        f"estimate is within {below:.2f} nats of its ceiling, log {images:,} = {ceiling:.2f}: the codes "
        "tell these test images apart almost perfectly. The split then gives the mismatch as roughly the "
        f"average KL minus log n ({mismatches}): a figure that depends on n and, from n images, overstates "
        "the mismatch on average. Read it as large, not as a measurement."
    )


def holes_observation(log_ratio_draws, log_ratio_disc, codes_outside: float) -> str:
    """Where the prior's draws land against the codes: `log_ratio_draws` is log q(z) − log p(z) at
    each prior draw, `log_ratio_disc` the same over a grid inside the prior's 2σ disc, and
    `codes_outside` the share of the codes μ(x) outside that disc."""
    draws = np.asarray(log_ratio_draws)
    in_hole = draws < -np.log(10)
    disc = np.exp(np.asarray(log_ratio_disc))
    return (
        f"**Holes.** {in_hole.sum():,} of the lab model's {len(draws):,} prior draws ({in_hole.mean():.1%}) "
        f"land where q(z) is below a tenth of p(z), and {np.mean(draws < 0):.0%} where it is below p(z). "
        f"Inside the prior's 2σ disc, q(z)/p(z) ranges from {disc.min():.2f} to {disc.max():.1f} over the "
        f"grid; {codes_outside:.0%} of the codes μ(x) lie outside the disc, where the prior puts 14 %."
    )


def _shares(row: Mapping) -> np.ndarray:
    counts = np.asarray(row["digit_counts"], dtype=float)
    return counts / counts.sum()


def _digits(shares: np.ndarray, chosen: Sequence[int]) -> str:
    return ", ".join(f"{digit}s {shares[digit]:.1%}" for digit in chosen)


def prior_and_mixture_observation(prior: Mapping, mixture: Mapping, rare: float = 0.05) -> str:
    """What the lab model draws from the prior and from a mixture fitted to its codes (judge rows)."""
    p, m = _shares(prior), _shares(mixture)
    missing = [digit for digit in range(10) if m[digit] < rare]
    still = f", but {_and_list([f'{d}s' for d in missing])} stay rare" if missing else ""
    moved = [d for d in range(10) if abs(m[d] - 0.1) < abs(p[d] - 0.1) - 0.02]  # 2 points closer to 10 %
    towards = (
        f"moves the shares of {_and_list([f'{d}s' for d in moved])} towards the data's"
        if moved
        else "moves no digit's share 2 points closer to 10 %"
    )
    return (
        f"**What the prior draws (latent 2).** {_digits(p, (1, 4, 5, 8, 9))}; mean confidence "
        f"{prior['mean_confidence']:.2f}, FD {prior['frechet_distance']:.1f}. Drawn from the mixture fitted "
        f"to the codes: {_digits(m, (1, 4, 5, 8, 9))}; confidence {mixture['mean_confidence']:.2f}, FD "
        f"{mixture['frechet_distance']:.1f}. Sampling where the codes are {towards}{still}."
    )


def shared_regions_observation(drawn, drawn_inside, read_as: Mapping[int, Sequence[float]]) -> str:
    """Where 4s and 5s go in the lab model's plane: the grid's readings and the reconstructions'."""

    def confused(digit: int) -> str:
        others = sorted((d for d in range(10) if d != digit), key=lambda d: -read_as[digit][d])[:2]
        return f"{read_as[digit][digit]:.0%} as {digit}s, " + " and ".join(
            f"{read_as[digit][d]:.0%} as {d}s" for d in others
        )

    return (
        "**Where the 4s and 5s go in two dimensions.** Of a grid over the plane, the judge reads "
        f"{drawn[4]:.1%} of the decoded codes as 4s and {drawn[5]:.1%} as 5s ({drawn_inside[4]:.1%} and "
        f"{drawn_inside[5]:.1%} inside the prior's 2σ disc). The codes of the test 4s lie among those of "
        "the 9s, and those of the 5s among the 3s and 8s (section 3); where codes mix, the decoder draws a "
        f"blend. Reconstructed through their own codes, test 4s are read {confused(4)}; 5s {confused(5)}; "
        f"3s {confused(3)}; 9s {confused(9)}. This shows where the encoder puts the 4s and 5s, not why "
        "training put them there."
    )


def wider_code_observation(rows: Mapping[tuple[str, str], Mapping], names: Sequence[str]) -> str:
    """Prior draws of the wider codes, and what the mixture sampler does to their FD."""
    draws = "; ".join(
        f"of {name}: {_digits(_shares(rows[(name, 'prior N(0, I)')]), (4, 5, 8, 9))}" for name in names
    )
    fds = [
        (
            rows[(name, "prior N(0, I)")]["frechet_distance"],
            rows[(name, "mixture on μ(x)")]["frechet_distance"],
        )
        for name in names
    ]
    lowered = all(after < before for before, after in fds)
    changes = " and ".join(
        f"from {before:.1f} to {after:.1f} ({name})" for name, (before, after) in zip(names, fds)
    )
    return (
        f"**A wider code.** Prior draws {draws}. The mixture sampler {'lowers' if lowered else 'changes'} "
        f"the FD {changes}."
    )


def collapse_observation(usage: Mapping[str, Mapping[str, np.ndarray]]) -> str:
    """Whether any dimension of the models in `usage` (`latent.dimension_use`) collapsed."""
    low = {name: int(np.sum(use["kl"] < LOW_KL)) for name, use in usage.items()}
    if not any(low.values()) and all(use["active"].all() for use in usage.values()):
        least = min(use["kl"].min() for use in usage.values())
        return (
            f"**Dimensions used.** Every dimension of {' and '.join(usage)} is active and costs at least "
            f"{least:.2f} nats of KL: in this run no dimension collapsed."
        )
    under = ", ".join(f"{name} {low[name]} of {len(use['kl'])}" for name, use in usage.items())
    inactive = " and ".join(str(int(len(use["kl"]) - use["active"].sum())) for use in usage.values())
    return (
        f"**Dimensions used.** Dimensions under {LOW_KL} nats of KL: {under}; inactive by the activity rule "
        f"(Cov_x(μ_j) ≤ 0.01, they barely move with the image): {inactive}."
    )


ONE_SEED = (
    "Each model is one seed, and notebook 05 measured the seed spread only for the grey lab model, so these "
    "rows show what each remedy did in this run, not what it does in general."
)


def _remedy_figures(rows: Mapping[str, Mapping]) -> tuple[Mapping, str, str]:
    """The plain model's row (the first), and the −ELBO changes of the others against it."""
    (_, plain), *others = rows.items()
    changes = ", ".join(
        f"{name.split(', ')[1]} {_signed(_shown_difference(row, plain))} nats" for name, row in others
    )
    elbos = " / ".join(f"{row['negative_elbo']:.2f}" for row in rows.values())
    kls = " / ".join(f"{row['kl_loss']:.2f}" for row in rows.values())
    figures = f"test −ELBO {elbos}, KL {kls} nats"
    return plain, changes, figures


def remedies_observation(rows: Mapping[str, Mapping]) -> str:
    """Warm-up and free bits on grey latent 20: rows of plain / warm-up / free bits, with `kl` and
    `active`."""
    plain, changes, figures = _remedy_figures(rows)
    low = int(np.sum(plain["kl"] < LOW_KL))
    total = [row["kl_loss"] for row in rows.values()]
    least = [row["kl"].min() for row in rows.values()]
    if low:
        effect = f"The plain model has {low} dimensions under {LOW_KL} nats; the table shows each remedy's."
    else:
        effect = (
            "The plain model has no collapsed dimension here, so the remedies have nothing to bring back: "
            f"they barely change the total KL ({min(total):.2f}–{max(total):.2f} nats) and shift it between "
            f"dimensions (least-used {min(least):.2f}–{max(least):.2f})."
        )
    active = " / ".join(str(row["active"].sum()) for row in rows.values())
    least_text = " / ".join(f"{value:.2f}" for value in least)
    return (
        f"**Warm-up and free bits.** {figures[0].upper()}{figures[1:]}, active dimensions {active}, "
        f"least-used dimension's KL {least_text} nats (plain / warm-up / free bits). Against the plain "
        f"model's −ELBO: {changes}. {ONE_SEED} {effect}"
    )


def binary_observation(rows: Mapping[str, Mapping], grey_kl, free_bits: float) -> str:
    """Collapse and its remedies on binary pixels: rows of plain / warm-up / free bits (in that order).

    `grey_kl` is each dimension's KL in grey latent 20, the comparison.
    """
    grey_low = int(np.sum(np.asarray(grey_kl) < LOW_KL))
    plain, changes, figures = _remedy_figures(rows)
    free = list(rows.values())[-1]
    low = {name: row["kl"] < LOW_KL for name, row in rows.items()}
    plain_low = next(iter(low.values()))
    missed = int(np.sum(plain_low & plain["active"]))
    if plain_low.any():
        use = (
            f"{plain['active'].sum()} of {len(plain_low)} dimensions pass the activity rule (Cov > 0.01), "
            f"but {plain_low.sum()} cost under {LOW_KL} nats of KL each ({plain['kl'][plain_low].sum():.2f} "
            f"nats together), against {grey_low} such dimensions in grey latent 20. Those {plain_low.sum()} "
            f"are (nearly) collapsed: on average their posteriors lie within {LOW_KL} nats of the prior"
            + (f", and the activity rule alone would miss {missed} of them. " if missed else ". ")
        )
    else:
        use = f"No dimension costs under {LOW_KL} nats of KL. "
    counts = " / ".join(str(int(mask.sum())) for mask in low.values())
    return (
        "**On binary pixels** (notebook 06's binarised latent-32 model, its binary test images; a deeper "
        f"network and a larger code than grey latent 20, not only other pixels). {use}Dimensions under "
        f"{LOW_KL} nats, plain / warm-up / free bits: {counts}; {figures}. Against the plain model's −ELBO: "
        f"{changes}. {ONE_SEED} Free bits charge each dimension's batch-averaged KL as at least "
        f"{free_bits:g} nat, so up to {free_bits * len(plain_low):g} nats in all cost the training loss "
        f"nothing, where the plain model spent {plain['kl_loss']:.2f}. With them every dimension costs "
        f"{free['kl'].min():.2f}–{free['kl'].max():.2f} nats; the KL term changes by "
        f"{_signed(_shown_difference(free, plain, 'kl_loss'))} nats and the reconstruction term by "
        f"{_signed(_shown_difference(free, plain, 'reconstruction_loss'))}, so the −ELBO (the bound; log "
        f"p(x) was not measured) changes by {_signed(_shown_difference(free, plain))}."
    )


def bound_observation(
    images: int,
    negative_elbo: float,
    sample_counts: Sequence[int],
    negative_bounds: Sequence[float],
    gains,
    refined_bound: float,
    refined_samples: int,
) -> str:
    """How tight the lab model's bound is: the IWAE curve, the refined q's gain and its IWAE figure.

    `negative_bounds` are −log p(x) estimates at `sample_counts` with the encoder's q as proposal,
    `gains` each image's ELBO gain from refining its q, `refined_bound` the IWAE estimate with
    the refined q as proposal (`refined_samples` samples).
    """
    gains = np.asarray(gains, dtype=float)
    best = negative_bounds[-1]
    refined_negative_elbo = negative_elbo - gains.mean()
    tightest = min(best, refined_bound, refined_negative_elbo)
    if refined_bound < best:
        proposal = (
            f"with the refined q as proposal, IWAE reaches {refined_bound:.2f} with K = "
            f"{refined_samples:,}: {_rounded_gap(best, refined_bound, 2):.2f} nats below the "
            f"encoder-proposal figure at K = {sample_counts[-1]:,}, whose curve looked flat. A flat IWAE "
            "curve is not a converged one: its codes came from the encoder's q, and the refined q puts "
            "them where more of the posterior is"
        )
    else:
        proposal = (
            f"with the refined q as proposal, IWAE gives {refined_bound:.2f} with K = {refined_samples:,}, "
            f"no tighter than the encoder-proposal figure at K = {sample_counts[-1]:,}"
        )
    direction = "falls" if negative_bounds[-1] < negative_bounds[0] else "does not fall"
    return (
        f"**How tight is the bound?** On these {images} images the −ELBO is {negative_elbo:.2f} and the "
        f"IWAE estimate of −log p(x) {direction} from {negative_bounds[0]:.2f} (K = {sample_counts[0]:,}) "
        f"to {best:.2f} (K = {sample_counts[-1]:,}). Refining each image's q raises its ELBO by "
        f"{gains.mean():.2f} ± {gains.std(ddof=1) / np.sqrt(len(gains)):.2f} nats, so its −ELBO falls to "
        f"{refined_negative_elbo:.2f}: the amortisation gap is at least that (the best diagonal Gaussian "
        f"may lie further); {proposal}. The tightest figure here is {tightest:.2f} nats: in expectation the "
        "model's −log p(x) (a Bernoulli score on grey pixels) is at most that, up to Monte Carlo error."
    )
