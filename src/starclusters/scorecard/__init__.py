"""The one scorer: any catalog against a truth table, one matching rule, the same metrics.

A catalog (the CNN's candidates, the classical peer's catalog, the artificial-cluster test)
is matched to a truth table one-to-one within 3 px
(:func:`starclusters.detect.matching.match_positions`, the project's one positional match)
and scored with the same numbers: precision, recall (all, and of the clusters with
visibility > 2.5, thesis eq. 3.2 and §4.2.3), recall per visibility bin, per (log t, log M)
bin and per local-background bin with Wilson intervals
(:func:`starclusters.stats.binomial_recall`), parameter errors (median bias,
68 % half-width, 95 % bound of |error|) and, where the catalog gives percentiles, the
calibration of its uncertainties.

- :mod:`.score`: input checks, :func:`~.score.match`, :func:`~.score.score`,
  :func:`~.score.local_background`, the long table (:func:`~.score.to_long`) and the
  summary over galaxies (:func:`~.score.summarise`);
- :mod:`.plots`: recall vs visibility, parameter errors, age–mass recall, precision vs
  recall — from the long table of many galaxies × methods.

Library only: the workflow's scripts read files, call these and write the results.
"""

from starclusters.scorecard.score import (
    LONG_COLUMNS,
    Scorecard,
    check_catalog,
    check_truth,
    local_background,
    match,
    matched_rows,
    score,
    summarise,
    to_long,
)

__all__ = [
    "LONG_COLUMNS",
    "Scorecard",
    "check_catalog",
    "check_truth",
    "local_background",
    "match",
    "matched_rows",
    "score",
    "summarise",
    "to_long",
]
