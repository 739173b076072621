"""Background cutouts (thesis §3.1.4, §2.4): windows of the real (or synthetic)
mosaic on which mock clusters are composed, split into train/validation/test by
disjoint spatial blocks so that test backgrounds never overlap training ones.
"""
