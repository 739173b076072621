"""The classical peer (baseline.smk): its SED fits and their photometry settings.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""

#: The classical peer's SED fits, one catalog each (scored as classical_<fit>).
BASELINE_FITS = ("grid", "library")


def baseline_photometry_config():
    """The `photometry` keys the classical peer's SED fits use (the stellar population's)."""
    return (
        {key: PHOT[key] for key in ("distance_mpc", "imf", "extinction")}
        | {"vega_zeropoint_mag": band_subset(PHOT["vega_zeropoint_mag"])}
        | bank_cut_settings()
    )
