"""Mosaics (mosaic.smk): raw images, the synthetic galaxy's config, outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""

from starclusters.mosaic.settings import (  # noqa: E402
    NO_WEIGHT,
    band_file,
    sci_weight_path,
)


def raw_band_path(band):
    """Where a band's image comes from: the synthetic galaxy, a download, or the user's file."""
    return (
        band_file(MOSAIC, band)["image"] or f"results/{GALAXY}/mosaic/raw/{band}.fits"
    )


def weight_band_path(band):
    """A band's weight map when it is a file of its own (else None): the configured `weight`
    path, or the `_wht` file beside a `_sci` image when it exists (read_band reads it if the
    image has no WHT extension; a missing one stops the mosaic job with the file named).
    """
    entry = band_file(MOSAIC, band)
    if entry["weight"] == NO_WEIGHT:
        return None
    if entry["weight"] is not None:
        return entry["weight"]
    if entry["weight_hdu"] is not None:
        return None  # in the image's own file
    sibling = sci_weight_path(raw_band_path(band))
    return sibling if sibling and Path(sibling).exists() else None


def mosaic_inputs(wildcards):
    """The mosaic rule's inputs: every band's raw image and weight map (so that a new weight
    map reruns the mosaic) and the mask catalogs."""
    inputs = {f"raw_{band}": raw_band_path(band) for band in BANDS}
    for band in BANDS:
        weight = weight_band_path(band)
        if weight is not None:
            inputs[f"weight_{band}"] = weight
    inputs["catalogs"] = [c["path"] for c in MOSAIC["mask"]["catalogs"]]
    return inputs


def mosaic_settings(own_files=True):
    """The mosaic rules' settings (params.mosaic): resampling, mask and how each band's file
    is read, {band: {hdu, weight, weight_hdu}} (band_file without the image, an input).
    own_files False: a validation galaxy's synthetic raw files, read with the defaults.
    Synthetic raw files are always read with the defaults, so `files` is left out for
    them (a config without it keeps its finished mosaics).
    """
    settings = {key: MOSAIC[key] for key in ("extent", "method", "tile_px", "mask")}
    if not own_files or MOSAIC["source"] != "files":
        return settings
    files = {}
    for band in BANDS:
        entry = band_file(MOSAIC, band)
        files[band] = {key: value for key, value in entry.items() if key != "image"}
    return settings | {"files": files}


def observed_psf_variant(section):
    """A synthetic galaxy's PSF (``section``: its synthetic settings) where it differs from
    training's: 'halo<0|1>_fwhm<scale>' (the rule observed_psf's folder), else None."""
    halo = section.get("psf_halo")
    scale = float(section.get("psf_fwhm_scale", 1.0))
    if (halo is None or bool(halo) == bool(PSF["halo"])) and scale == 1.0:
        return None
    halo = PSF["halo"] if halo is None else halo
    return f"halo{int(bool(halo))}_fwhm{scale:g}"


def galaxy_psfs(section):
    """The PSF files a synthetic galaxy is drawn with (and its truth measured with): the
    training PSFs, or its own (observed_psf_variant)."""
    variant = observed_psf_variant(section)
    if variant is None:
        return expand("results/{galaxy}/psf/{band}.fits", galaxy=GALAXY, band=BANDS)
    return expand(
        "results/{galaxy}/psf/observed_{variant}/{band}.fits",
        galaxy=GALAXY,
        variant=variant,
        band=BANDS,
    )


def galaxy_isochrones(section):
    """The isochrone table a synthetic galaxy is drawn with: the run's, or one at the
    galaxy's own metallicity_z (rule observed_isochrones)."""
    z = section.get("metallicity_z")
    if z is None or float(z) == float(PHOT["isochrones"]["metallicity_z"]):
        return f"results/{GALAXY}/photometry/isochrones.parquet"
    return f"results/{GALAXY}/photometry/observed_z{float(z):g}/isochrones.parquet"


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
