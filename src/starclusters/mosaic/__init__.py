"""Mosaic stage: per-band images on one common north-up TAN grid plus a mask
(:mod:`starclusters.mosaic.prepare`), and the download of public mosaics
(:mod:`starclusters.mosaic.download`). The synthetic galaxies that stand in for HST
mosaics are :mod:`starclusters.synthetic`.
"""
