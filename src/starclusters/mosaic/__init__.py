"""Mosaic stage: per-band images on one common north-up TAN grid plus a mask
(:mod:`starclusters.mosaic.prepare`), and synthetic galaxies that stand in for HST
mosaics (:mod:`starclusters.mosaic.synthetic`).
"""
