"""starclusters: find star clusters in multi-band galaxy images and infer their
age, mass, extinction and size with a CNN trained on mock clusters.

The method follows Bialopetravičius, Narbutis & Vansevičius (A&A 2019, 2020) and
the M83 population study; one subpackage per pipeline stage, usable without
Snakemake.
"""

__version__ = "0.1.0"
