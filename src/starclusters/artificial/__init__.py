"""Artificial-cluster tests (thesis §4.2.3, Figs. 4.1–4.3): fresh mocks on a regular grid over
the mosaic, found again by the same detection, matched back, and recall measured.

- :mod:`.grid`: the grid of injection sites (one per ``artificial.spacing_px`` where the
  window is usable) and the region the search covers;
- :mod:`.inject`: the seed stream of the artificial mocks and their injection with the
  one :func:`~starclusters.mocks.compose.compose`;
- :mod:`.matching`: injected mocks against the candidates and peaks (≤ 3 and ≤ 6 px);
- :mod:`.recall`: recall with binomial uncertainties in bins, the reference node and the
  parameter errors of recovered mocks;
- :mod:`.plots`: Figs. 4.2 and 4.3;
- :mod:`.stage`: the workflow's entry points (files in, files out).

The mocks are rendered by the bank's own code (:func:`starclusters.mocks.stage.build_mock_shard`)
from a seed stream the bank never uses, so none of them was seen in training. The
detection is the detection stage's (:func:`starclusters.detect.stage.detect_tile`, whatever
``detect.mode`` says) and the peaks and candidates are
:func:`starclusters.detect.candidates_stage.make_catalog`'s.
"""
