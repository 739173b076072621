"""Detection (thesis §4.2.2): the trained network slid over the whole mosaic, tile by tile.

- :mod:`.tiles`: the window convention, the tile plan (cores and halos) and the memory a
  tile job needs — plain numpy, importable without torch (the workflow reads it at parse
  time);
- :mod:`.settings`: the maps' settings (``detect`` section) and their defaults, and
  :func:`~starclusters.detect.settings.resolve_mode` (mode auto: fast for a dense-ready
  network, else exact) — without torch;
- :mod:`.exact`: exact mode, one network evaluation per window centre (every
  ``step_px``-th pixel), through :func:`starclusters.model.inference.predict`;
  :mod:`.fast`: fast mode, the dense-ready network evaluated fully convolutionally;
- :mod:`.progress`: windows done / total with the rate and ETA (bar and log lines);
- :mod:`.maps`: the value maps (CLASS, VISIBILITY, LOG_AGE, LOG_MASS, AV, LOG_RH) of a tile
  and of the mosaic as FITS, and the merge of tiles;
- :mod:`.stage`: settings from config, the per-tile entry points of the workflow and
  :func:`~starclusters.detect.stage.detect_images` for a user's own images (the
  ``starclusters detect`` command);
- :mod:`.peaks`, :mod:`.catalog`: object candidates from the maps (smoothed class peaks,
  weighted parameters; thesis §4.2.2, second part), read from ``maps.fits``;
- :mod:`.matching`, :mod:`.matching_plots`: one-to-one positional matching of candidates
  to a truth catalogue (synthetic default; the artificial-cluster test reuses it);
- :mod:`.gallery`: the top candidates with their age × A_V output grids (thesis Fig. 3.21);
- :mod:`.candidates_stage`: the workflow's entry points for peaks, catalog, gallery, truth,
  and those of the ``starclusters catalog`` command.
"""
