"""Mosaics (mosaic.smk): raw images, the synthetic galaxy's config, outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""


def raw_band_path(band):
    """Where a band's image comes from: the synthetic galaxy, a download, or the user's file."""
    if MOSAIC["source"] == "synthetic" or band in MOSAIC["download"]:
        return f"results/{GALAXY}/mosaic/raw/{band}.fits"
    return MOSAIC["files"][band]


def mosaic_inputs(wildcards):
    """The mosaic rule's inputs: every band's raw image and the mask catalogs."""
    inputs = {f"raw_{band}": raw_band_path(band) for band in BANDS}
    inputs["catalogs"] = [c["path"] for c in MOSAIC["mask"]["catalogs"]]
    return inputs


def synthetic_config():
    """Every config value that shapes the synthetic galaxy (and nothing else)."""
    mocks = config["mocks"]
    return {
        "galaxy": GALAXY,
        "bands": BANDS,
        "pixel_scale_arcsec": config["pixel_scale_arcsec"],
        "photometry": {key: PHOT[key] for key in ("distance_mpc", "imf", "extinction")}
        | {"vega_zeropoint_mag": band_subset(PHOT["vega_zeropoint_mag"])},
        "psf": {key: PSF[key] for key in ("oversampling", "core_radius_px")},
        "mocks": {
            key: mocks[key]
            for key in ("truncation_arcsec", "faint_limit_mag", "faint_packets")
        },
        "mosaic": {"synthetic": MOSAIC["synthetic"]},
    }


def mosaic_outputs():
    """The mosaic and background products for the configured galaxy."""
    out = expand(
        "results/{galaxy}/mosaic/{name}",
        galaxy=GALAXY,
        name=[f"{band}.fits" for band in BANDS] + ["mask.fits"],
    )
    if MOSAIC["source"] == "synthetic":
        out += expand(
            "results/{galaxy}/mosaic/{name}",
            galaxy=GALAXY,
            name=[
                "truth.parquet",
                "arms.parquet",
                "synthetic.png",
                "synthetic_zoom.png",
            ],
        )
    return out + expand(
        "results/{galaxy}/backgrounds/shard_{shard}.{ext}",
        galaxy=GALAXY,
        shard=range(config["backgrounds"]["n_shards"]),
        ext=("fits", "parquet"),
    )
