"""What moving the candidates to their light centroids does to finished runs' scores.

For each results directory (``results/<galaxy>`` of a finished run) and each galaxy it
scores (the training galaxy and every validation galaxy), the stored candidates are
scored as they are and again with x, y moved to their light centroids
(:func:`starclusters.detect.recentre.light_centroids`, the positions the peak rules now
write; each peak moves on its own, so moving the stored candidates is moving the peaks),
with the scorecard's one-to-one match (``score``, ≤ 3 px). Prints, per run, the pooled
validation numbers — matched, false, visible clusters found at visibility 2.5–5 and > 5,
precision, the median distance of the matched — before → after, and the training
galaxy's. The cut is the one each table was made with (their metadata)::

    .venv/bin/python docs/scripts/recentre_effect.py results/synthetic_m83 /tmp/a1/results/synthetic_m83

Reads only; seconds per run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from starclusters.detect.recentre import RADIUS_PX, SKY_ANNULUS_PX, light_centroids
from starclusters.io import read_table
from starclusters.scorecard.score import score


def galaxies(run: Path) -> dict[str, Path]:
    """{name: folder with detect/ and mosaic/}: the training galaxy and the validation ones."""
    out = {"training": run}
    validation = run / "validation"
    if validation.is_dir():
        out |= {p.name: p for p in sorted(validation.iterdir()) if (p / "detect").is_dir()}
    return out


def counts(truth: pd.DataFrame, candidates: pd.DataFrame) -> np.ndarray:
    """[matched, false, found 2.5–5, of them, found > 5, of them, Σ distance of matched]."""
    matched = score(truth, candidates, max_px=3.0).matched
    found = matched["detected"].to_numpy(bool)
    vis = matched["visibility"].to_numpy(float)
    low, high = (vis > 2.5) & (vis <= 5), vis > 5
    distance = matched["distance_px"].to_numpy(float)[found]
    return np.array(
        [
            found.sum(),
            len(candidates) - found.sum(),
            found[low].sum(),
            low.sum(),
            found[high].sum(),
            high.sum(),
            np.median(distance) if distance.size else np.nan,
        ]
    )


def recentred(folder: Path, candidates: pd.DataFrame, bands: list[str]) -> pd.DataFrame:
    """The candidates at their light centroids on the folder's mosaic bands and mask."""
    images = [fits.getdata(folder / "mosaic" / f"{band}.fits") for band in bands]
    bad = fits.getdata(folder / "mosaic" / "mask.fits") != 0
    x, y, _ = light_centroids(
        images, candidates["x"], candidates["y"], RADIUS_PX, SKY_ANNULUS_PX, bad
    )
    return candidates.assign(x=x, y=y)


def line(label: str, before: np.ndarray, after: np.ndarray) -> str:
    def one(c):
        precision = c[0] / (c[0] + c[1]) if c[0] + c[1] else np.nan
        return (
            f"{int(c[0])} / {int(c[1])}, 2.5-5 {int(c[2])}/{int(c[3])}, "
            f">5 {int(c[4])}/{int(c[5])}, precision {precision:.3f}, median d {c[6]:.2f} px"
        )

    return f"  {label:<11} {one(before)}\n  {'':<11} -> {one(after)}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="results/<galaxy> directories")
    parser.add_argument("--bands", nargs="+", default=["F336W", "F438W", "F814W"])
    args = parser.parse_args(argv)
    for run in args.runs:
        pooled = {"before": [], "after": []}
        print(run)
        for name, folder in galaxies(run).items():
            candidates = read_table(folder / "detect" / "candidates.parquet")
            candidates = candidates.assign(
                x=candidates.get("peak_x", candidates["x"]),
                y=candidates.get("peak_y", candidates["y"]),
            )  # from the class-map peak pixel, whichever code wrote the table
            truth = read_table(folder / "mosaic" / "truth.parquet")
            before = counts(truth, candidates)
            after = counts(truth, recentred(folder, candidates, args.bands))
            if name == "training":
                print(line("training", before, after))
            else:
                pooled["before"].append(before)
                pooled["after"].append(after)
        if pooled["before"]:
            b, a = (np.array(pooled[k]) for k in ("before", "after"))
            b_sum, a_sum = b.sum(axis=0), a.sum(axis=0)
            b_sum[6], a_sum[6] = np.median(b[:, 6]), np.median(a[:, 6])
            print(line(f"validation ({len(b)})", b_sum, a_sum))


if __name__ == "__main__":
    main()
