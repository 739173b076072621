"""Artificial-cluster tests (thesis §4.2.3, Figs. 4.1–4.3): fresh mocks on a regular grid over
the mosaic, in as many independent layers (copies of the mosaic) as asked, found again by
the same detection, matched back, recall measured and a selection function fitted.

- :mod:`.grid`: the grid of injection sites (one per ``artificial.spacing_px`` where the
  window is usable; each layer's shifted by its own offset) and the region the search covers;
- :mod:`.draw`: how the mocks' parameters are drawn (the whole grid, denser near the edge);
- :mod:`.inject`: the seed streams of the artificial mocks and their injection with the
  one :func:`~starclusters.mocks.compose.compose`;
- :mod:`.matching`: injected mocks against the candidates and peaks (≤ 3 and ≤ 6 px);
- :mod:`.recall`: recall with binomial uncertainties in bins, the reference node and the
  parameter errors of recovered mocks;
- :mod:`.plots`: Figs. 4.2 and 4.3;
- :mod:`.selection`: P(detected | log t, log M, A_V, r_h, background) fitted to the pooled
  injections, as a gridded table (:class:`~.selection.SelectionFunction` queries it), and
  :mod:`.selection_plots` its calibration and completeness contours;
- :mod:`.stage`: the workflow's entry points (files in, files out).

The mocks are rendered by the bank's own code (:func:`starclusters.mocks.stage.build_mock_shard`)
from a seed stream the bank never uses, so none of them was seen in training. The
detection is the detection stage's (:func:`starclusters.detect.stage.detect_tile`, whatever
``detect.mode`` says) and the peaks and candidates are
:func:`starclusters.detect.candidates_stage.make_catalog`'s.
"""
