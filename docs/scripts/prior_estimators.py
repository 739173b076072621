"""How far do A_V prior estimators put the catalogue's A_V from the truth? (docs/detection.md)

For each finished run (a results directory) and each scored galaxy (the validation
galaxies and the training galaxy) it re-reads the candidates' posteriors exactly as
``detect.population_prior`` does (:func:`~starclusters.detect.candidates_stage.population_prior_estimates`,
the network run again around each candidate), then decodes their A_V under four priors:
the training prior (no correction), the EM estimate with the default shrink (what the
catalogue holds), EM with shrink 1, and EM smoothed after every step over the A_V bins
(EMS: ``av_prior_weights(..., smooth=True)``). Prints the median A_V error of the matched
visible clusters (true visibility > 2.5, the scorecard's match) per run × galaxy ×
estimator, and per estimator the mean, mean |·| and largest |·| of those medians and the
mean 95 % |error| (``--table``: the rows as CSV)::

    .venv/bin/python docs/scripts/prior_estimators.py results/synthetic_m83 /tmp/a1/results/synthetic_m83

Needs the runs' maps, mosaics, model and scorecard; ~20 s per run on 2 cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import starclusters.detect.candidates_stage as stage
from starclusters.detect.population_prior import SHRINK, av_prior_weights, reweight
from starclusters.detect.settings import CatalogSettings
from starclusters.model.checkpoint import load_model
from starclusters.model.codec import decode

BANDS = ("F336W", "F438W", "F814W")


def estimators(posteriors, training_av):
    """(name, A_V weights) of each estimator compared."""
    yield "training prior", np.ones(len(training_av))
    yield f"EM, shrink {SHRINK:g} (catalogue)", av_prior_weights(posteriors, training_av, SHRINK)[0]
    yield "EM, shrink 1", av_prior_weights(posteriors, training_av, 1.0)[0]
    yield "EMS (smoothed EM)", av_prior_weights(posteriors, training_av, SHRINK, smooth=True)[0]


def candidate_posteriors(results: Path, base: Path):
    """(posteriors (P, A, E, M), training A_V marginal, candidates' (x, y)) of one galaxy."""
    captured = {}
    real = stage.av_prior_weights

    def capture(posteriors, training_av, **options):
        captured.update(posteriors=posteriors, training_av=np.asarray(training_av))
        return real(posteriors, training_av, **options)

    bands = {band: str(base / "mosaic" / f"{band}.fits") for band in BANDS}
    stage.av_prior_weights = capture
    try:  # the catalogue's own path: peaks, then the population prior on the candidates
        peaks, _, _ = stage.make_catalog(
            base / "detect" / "maps.fits",
            {},
            {"source": "none"},
            None,
            model_path=results / "model" / "model.pt",
            band_paths=bands,
        )
    finally:
        stage.av_prior_weights = real
    settings = CatalogSettings()
    chosen = stage.candidate_mask(peaks, settings.class_threshold, settings.visibility_threshold)
    xy = peaks.loc[chosen, ["x", "y"]].to_numpy(int)
    return captured["posteriors"], captured["training_av"], xy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="results/<galaxy> of each run")
    parser.add_argument("--table", type=Path, help="also write the per-galaxy rows (CSV)")
    args = parser.parse_args()
    rows = []
    for results in args.results:
        _, grids, _ = load_model(results / "model" / "model.pt", device="cpu")
        axes = [grids.log_age_yr, grids.av_mag, grids.log_mass_msun]
        galaxies = sorted(p.name for p in (results / "validation").iterdir() if p.is_dir())
        for galaxy in [*galaxies, "training"]:
            base = results if galaxy == "training" else results / "validation" / galaxy
            posteriors, training_av, xy = candidate_posteriors(results, base)
            candidates = pd.read_parquet(base / "detect" / "candidates.parquet")
            matched = pd.read_parquet(results / "scorecard" / galaxy / "cnn_matched.parquet")
            matched = matched[matched["detected"] & (matched["visibility"] > 2.5)]
            rows_of = candidates.iloc[matched["catalog_row"].astype(int).to_numpy()]
            index = {(int(x), int(y)): i for i, (x, y) in enumerate(xy)}
            take = np.array(
                [index[(int(x), int(y))] for x, y in zip(rows_of.x, rows_of.y, strict=True)]
            )
            truth = matched["av_mag"].to_numpy(float)
            for name, weights in estimators(posteriors, training_av):
                av = decode(reweight(posteriors[take], weights), axes)[:, 1]
                rows.append(
                    {
                        "run": str(results),
                        "galaxy": galaxy,
                        "estimator": name,
                        "median_error": float(np.median(av - truth)),
                        "abs95": float(np.quantile(np.abs(av - truth), 0.95)),
                    }
                )
            print(f"{results} {galaxy}: {len(take)} matched visible clusters", flush=True)
    table = pd.DataFrame(rows)
    if args.table:
        table.to_csv(args.table, index=False)
    pd.set_option("display.width", 250)
    print(
        table.pivot_table(index=["estimator", "run"], columns="galaxy", values="median_error")
        .round(2)
        .to_string()
    )
    for label, chosen in (
        ("validation galaxies", table["galaxy"] != "training"),
        ("training galaxy", table["galaxy"] == "training"),
    ):
        summary = (
            table[chosen]
            .groupby("estimator")
            .agg(
                mean=("median_error", "mean"),
                mean_abs=("median_error", lambda x: np.mean(np.abs(x))),
                max_abs=("median_error", lambda x: np.max(np.abs(x))),
                abs95=("abs95", "mean"),
            )
        )
        print(f"\n{label}: median A_V error per galaxy × run, over them\n{summary.round(3)}")


if __name__ == "__main__":
    main()
