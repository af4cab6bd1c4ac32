"""The Markdown tables the notebooks show, in nats per image, and the sentences computed from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lab_utils.losses import LOSS_TERMS


def final_losses(history: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Return the last epoch's value of every logged loss term."""
    if not isinstance(history, Mapping) or "loss" not in history:
        raise ValueError("history must be the history dict training returns, with a 'loss' entry.")
    return {key: float(values[-1]) for key, values in history.items()}


def loss_table(history) -> str:
    """Return a Markdown table of the last epoch's train and validation loss terms (nats per image)."""
    last = final_losses(history)
    rows = ["| term | train | validation (test set) |", "| --- | ---: | ---: |"]
    for key, label in LOSS_TERMS.items():
        validation = last.get(f"val_{key}")
        shown = f"{validation:.2f}" if validation is not None else "—"
        escaped = label.replace("|", "\\|")  # a bare | would split the Markdown cell
        rows.append(f"| {escaped} | {last[key]:.2f} | {shown} |")
    return "\n".join(rows)


def comparison_table(results: Mapping[str, Mapping]) -> str:
    """Markdown table of `compare_sets` results, one column per set."""
    names = list(results)
    rows = [
        ("classifier accuracy (vs the originals' labels)", "accuracy", "{:.1%}"),
        ("classifier mean confidence", "mean_confidence", "{:.3f}"),
        ("digits covered (≥ 5 % of images)", "digits_covered", "{}/10"),
        ("Fréchet distance to the originals (kit classifier features)", "frechet_distance", "{:.2f}"),
        ("mean distance to the nearest training image (pixels, L2)", "nearest_train_distance", "{:.2f}"),
        ("the closest 1 %: distance to the nearest training image", "nearest_train_distance_1pct", "{:.2f}"),
    ]
    lines = ["| measure | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for label, key, form in rows:
        cells = ["—" if results[n][key] is None else form.format(results[n][key]) for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def experiments_table(rows: list[dict]) -> str:
    """Markdown table of experiment rows (nats per image; FD is the kit classifier's Fréchet distance).

    −ELBO, IWAE and KL are on the same test images (`test_images` of each row); the IWAE
    header gives K, the samples per image (`iwae_samples`, one value for all rows).
    """
    counts = {row["iwae_samples"] for row in rows}
    if len(counts) != 1:
        raise ValueError(f"the rows' IWAE estimates use different K ({sorted(counts)}); measure them alike.")
    (samples,) = counts
    header = (
        f"| model | latent | β | −ELBO | −log p(x) (IWAE, K = {samples:,}) | KL | sample confidence | "
        "digits covered | FD to test | train time |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: | ---: | ---: |"
    )
    lines = [header]
    for row in rows:
        extra = f" (labels right: {row['accuracy']:.0%})" if row.get("accuracy") is not None else ""
        lines.append(
            f"| {row['name']} | {row['latent_dim']} | {row['beta']:g} | {row['negative_elbo']:.1f} | "
            f"{-row['log_px']:.1f} | {row['kl_loss']:.1f} | {row['mean_confidence']:.2f}{extra} | "
            f"{row['digits_covered']}/10 | {row['frechet_distance']:.1f} | {row['train_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def _what_the_score_is(likelihood: str, binary: bool) -> str:
    if likelihood == "continuous_bernoulli":
        # MNIST's pixels are 8-bit with exact 0s, where the density grows without bound as λ → 0
        return "a density on [0, 1], not a probability: unbounded on pixels at exactly 0, so not comparable"
    return "yes: a probability of binary images" if binary else "no: a cross-entropy on grey pixels"


def likelihood_table(rows: Sequence[Mapping], published: Mapping[str, float] | None = None) -> str:
    """Markdown table of `metrics.likelihood_figures` rows, each on its own test images, then published NLLs.

    Each row needs name, likelihood, binary (were its images binary?) and the figures; both
    columns of a row come from the same images; ± is the IWAE mean's standard error.
    """
    lines = [
        "| model | test images | decoder | is −log p(x) a log-likelihood? | −ELBO | IWAE −log p(x) |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for row in rows:
        images = f"{row['images']:,} {'binarised' if row['binary'] else 'grey'}"
        lines.append(
            f"| {row['name']} | {images} | {row['likelihood'].replace('_', ' ')} | "
            f"{_what_the_score_is(row['likelihood'], row['binary'])} | {row['negative_elbo']:.1f} | "
            f"{row['negative_log_px']:.1f} ± {row['standard_error']:.1f} (K = {row['samples']:,}) |"
        )
    for name, value in (published or {}).items():
        lines.append(f"| {name} | 10,000 binarised | bernoulli | yes (published) | — | {value:.2f} |")
    return "\n".join(lines)


def kl_split_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of `latent.kl_split` results per model: average KL = I_q(n; z) + KL(q(z) ‖ p(z))."""
    lines = [
        "| model | average KL(q(z\\|x) ‖ p(z)) | = I_q(n; z) | + KL(q(z) ‖ p(z)) | I_q ceiling (log n) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, split in rows.items():
        lines.append(
            f"| {name} | {split['average_kl']:.2f} | {split['mutual_information']:.2f} | "
            f"{split['marginal_kl']:.2f} | {split['information_ceiling']:.2f} |"
        )
    return "\n".join(lines)


def sampler_table(rows: Sequence[Mapping]) -> str:
    """Markdown table of generated sets (`judge.judge_images` figures, name, sampler, nearest distances).

    Digit shares are as the judge reads the images; MNIST's test set has each digit near 10 %.
    """
    lines = [
        "| model | sampler | "
        + " | ".join(f"{digit}s" for digit in range(10))
        + " | mean confidence | FD to test | distance to nearest training image: mean | closest 1 % |",
        "| --- | --- |" + " ---: |" * 14,
    ]
    for row in rows:
        counts = row["digit_counts"]
        shares = " | ".join(f"{share:.1%}" for share in counts / counts.sum())
        lines.append(
            f"| {row['name']} | {row['sampler']} | {shares} | {row['mean_confidence']:.2f} | "
            f"{row['frechet_distance']:.1f} | {row['nearest_train_distance']:.2f} | "
            f"{row['nearest_train_distance_1pct']:.2f} |"
        )
    return "\n".join(lines)


def dimension_table(rows: Mapping[str, Mapping]) -> str:
    """A Markdown table of `metrics.dimension_rows`: −ELBO terms, active dimensions, least and most used."""
    lines = [
        "| model | test −ELBO | reconstruction | KL | active dimensions | KL of the least / most used |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {row['negative_elbo']:.2f} | {row['reconstruction_loss']:.2f} | {row['kl_loss']:.2f} "
        f"| {row['active'].sum()} of {len(row['active'])} | {row['kl'].min():.2f} / {row['kl'].max():.2f} |"
        for name, row in rows.items()
    ]
    return "\n".join(lines)


def hardest_and_easiest_digit(errors: Mapping[int, float], floors: Mapping[int, float]) -> str:
    """A sentence on the hardest and easiest digit to reconstruct, and how much of the gap the floor explains.

    `errors` and `floors` map each digit to its mean reconstruction loss and grey-pixel floor (nats).
    """
    worst, best = max(errors, key=errors.get), min(errors, key=errors.get)
    gap, floor_gap = errors[worst] - errors[best], floors[worst] - floors[best]
    return (
        f"Digit **{worst}** is the hardest to reconstruct ({errors[worst]:.1f} nats) and digit **{best}** "
        f"the easiest ({errors[best]:.1f} nats). Their grey-pixel floors, the cost of the strokes' grey "
        f"edges that no decoder removes, are {floors[worst]:.1f} and {floors[best]:.1f} nats: they explain "
        f"{floor_gap:.1f} of the {gap:.1f}-nat gap; above the floor it is still {gap - floor_gap:.1f} nats."
    )


def copying_check(results: Mapping[str, Mapping], images: int) -> str:
    """A sentence on the distances to the nearest training image of `judge_images` results, and their limit.

    `results` needs "generated", "originals" (held-out test images) and "reconstructions".
    """
    nearest = {key: results[key]["nearest_train_distance"] for key in results}
    closest = {key: results[key]["nearest_train_distance_1pct"] for key in results}
    pair = f"({closest['reconstructions']:.2f} against {closest['originals']:.2f})"
    if closest["reconstructions"] > closest["originals"]:
        limit = (
            "Reconstructions sit farther from the training set than their originals in the closest 1 % "
            f"{pair}, so a blurred copy of a training image need not stand out here: this check cannot rule "
            "out copying."
        )
    else:
        limit = (
            "Reconstructions sit no farther from the training set than their originals in the closest 1 % "
            f"{pair}; still, these distances show exact or near-exact copies, not blurred ones: this check "
            "cannot rule out copying."
        )
    return (
        f"Pixel distance to the nearest training image (the first {images:,} images of each set): generated "
        f"digits {nearest['generated']:.2f} on average (closest 1 %: {closest['generated']:.2f}), real test "
        f"digits {nearest['originals']:.2f} ({closest['originals']:.2f}), their reconstructions "
        f"{nearest['reconstructions']:.2f} ({closest['reconstructions']:.2f}). {limit}"
    )


def memorisation_check(gaps: Mapping[str, Mapping[str, float]], threshold: float = 3.0) -> str:
    """Sentences on whether each model fits its training images better than held-out ones.

    `gaps` maps a model's name to its `metrics.memorisation_gap`; a gap counts as a difference
    only beyond `threshold` standard errors.
    """
    first = next(iter(gaps.values()))
    sentences = [
        f"Memorisation check (negative ELBO of each image, {first['train_images']:,} training images "
        f"against {first['heldout_images']:,} test images; a gap counts beyond {threshold:g} standard "
        "errors; the kit's tests check that it flags a VAE that memorised 256 training images):"
    ]
    for name, gap in gaps.items():
        difference, error = gap["gap"], gap["standard_error"]
        scores = f"({gap['train']:.1f} against {gap['heldout']:.1f} nats)"
        if difference > threshold * error:
            verdict = (
                f"training images score {difference:.1f} ± {error:.1f} nats better than test images "
                f"{scores}: it fits the images it was trained on more closely than unseen ones, which is "
                "overfitting, and at its extreme memorisation."
            )
        elif difference < -threshold * error:
            verdict = (
                f"test images score {-difference:.1f} ± {error:.1f} nats better than training images "
                f"{scores}: the model fits images it has not seen better, the opposite of memorisation."
            )
        else:
            verdict = (
                f"the gap is {difference:+.1f} ± {error:.1f} nats {scores}, no difference this check can "
                "detect: no sign that it memorised its training images."
            )
        sentences.append(f"{name}: {verdict}")
    return " ".join(sentences)
