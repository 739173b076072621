"""Mock bank (mocks.smk): PSF inputs and settings, the shards' config, outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""

import shlex


def psf_inputs(wildcards):
    """The user's PSF file for this band, when the config asks for files."""
    return [PSF["files"][wildcards.band]] if PSF["source"] == "files" else []


def psf_settings(wildcards):
    """The PSF settings that shape one band's PSF file."""
    files = PSF["files"]
    settings = {
        "source": PSF["source"],
        "oversampling": PSF["oversampling"],
        "size_arcsec": PSF["size_arcsec"],
        "files": (
            {wildcards.band: files[wildcards.band]} if wildcards.band in files else {}
        ),
    }
    # only when on, so that configs without a halo keep their finished PSFs (and all after)
    return settings | ({"halo": True} if PSF["halo"] else {})


def mock_config():
    """Every config value that shapes a mock shard (and nothing else, so nothing else reruns it)."""
    return {
        "bands": BANDS,
        "pixel_scale_arcsec": config["pixel_scale_arcsec"],
        "window_px": config["window_px"],
        "photometry": {key: PHOT[key] for key in ("distance_mpc", "imf", "extinction")}
        | {"vega_zeropoint_mag": band_subset(PHOT["vega_zeropoint_mag"])}
        | bank_cut_settings(),
        "psf": {key: PSF[key] for key in ("oversampling", "core_radius_px")},
        # the number of shards changes which shards exist, not what one holds
        "mocks": {k: v for k, v in config["mocks"].items() if k != "n_shards"},
    }


def mock_outputs():
    """The mock bank's shards for the configured galaxy."""
    return expand(
        "results/{galaxy}/mocks/shard_{shard}.{ext}",
        galaxy=GALAXY,
        shard=range(config["mocks"]["n_shards"]),
        ext=("fits", "parquet"),
    ) + expand(
        "results/{galaxy}/mocks/{figure}.png",
        galaxy=GALAXY,
        figure=("mock_grid", "bank_colours")
        + (("star_groups",) if star_group_fraction() > 0 else ()),
    )


def star_group_fraction():
    """train.star_group_fraction, by the class that owns its default (0: no star groups)."""
    return train_settings(config["train"]).star_group_fraction


def star_group_config():
    """Every config value that shapes a star-group shard: the population, the PSF and the
    bank's magnitude cuts as in mock_config(), and the star_groups section but n_shards.
    """
    shared = mock_config()
    return {
        key: shared[key]
        for key in ("bands", "pixel_scale_arcsec", "window_px", "photometry", "psf")
    } | {
        "star_groups": {
            k: v for k, v in config.get("star_groups", {}).items() if k != "n_shards"
        }
    }


def star_group_shards():
    """The star-group shards (hard negatives) training reads: none unless
    train.star_group_fraction is above 0."""
    if star_group_fraction() <= 0:
        return []
    return expand(
        "results/{{galaxy}}/mocks/star_groups/shard_{shard}.fits",
        shard=range(config["star_groups"]["n_shards"]),
    )


def star_group_argument(wildcards, input):
    """The `--star-groups` option of `starclusters train` (empty without star groups)."""
    paths = list(input.star_groups)
    return "--star-groups " + " ".join(shlex.quote(p) for p in paths) if paths else ""
