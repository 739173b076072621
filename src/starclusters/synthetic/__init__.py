"""Synthetic galaxies that stand in for HST mosaics, with their truth.

:mod:`.spec` (every parameter and its source), :mod:`.geometry` (disk, arms, dust lanes
and the sky frame), :mod:`.field` (unresolved light and field stars), :mod:`.catalogs`
(clusters, associations, background galaxies, foreground stars), :mod:`.galaxy` (the
images, the truth and the arms' tables), :mod:`.plots` (previews), :mod:`.truth` (the
truth on the prepared mosaic grid, with visibilities), :mod:`.validation` (the
validation galaxies of the scorecard) and :mod:`.stage` (the workflow's entry points).
"""
