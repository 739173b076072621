"""The ``starclusters`` command line; the rule ``train`` runs ``starclusters train``.

    starclusters --version
    starclusters train --mocks M... --backgrounds B... --psfs P... [--star-groups G...]
        --config-json CONFIG
        --seed N --checkpoint PATH --model PATH --history PATH --plot PATH [--log-file PATH]
    starclusters detect --model MODEL --images BAND.fits... [--mask MASK] --output MAPS
        [--mode auto|exact|fast] [--step-px N] [--tile-px N] [--batch-size N]
        [--device cpu|cuda] [--threads N] [--log-file PATH]
        [--catalog-dir DIR [catalog options]]
    starclusters catalog MAPS --output-dir DIR [--images BAND.fits... [--mask MASK]]
        [--model MODEL]
        [--class-threshold C] [--visibility-threshold V] [--smooth-sigma-px S] ...
        [--distance-mpc D] [--geometry RA DEC INCL PA] [--gallery PNG [--zeropoints-mag ZP...]]
    starclusters completeness --selection PATH --log-age-yr T [--log-mass-msun M]
        [--av-mag A] [--rh-arcsec R] [--background-counts-s B] [--mass-at P]

``detect`` applies a trained model to a user's images (one FITS per band on one grid) and
writes the value maps (:func:`starclusters.detect.stage.detect_images`, the functions of
the workflow's detection rules); ``--mode auto`` (the default) runs the fast mode where the
network allows it and the exact mode otherwise
(:func:`starclusters.detect.settings.resolve_mode`); the windows done of all, with an ETA,
are shown as it runs. ``catalog`` writes the peaks, candidates and DS9 regions of maps
(:func:`starclusters.detect.candidates_stage.catalog_of_maps`, the rule find_peaks'
functions) and with ``--gallery`` the gallery figure
(:func:`~starclusters.detect.candidates_stage.gallery_of_images`); ``detect --catalog-dir``
runs it right after the maps. ``completeness`` prints the detection probability of the
artificial test's selection function (:class:`starclusters.artificial.selection.SelectionFunction`)
at one point, and with ``--mass-at`` the log mass at which it reaches a given probability.
Every command logs a config or input error naming the option or file and exits with 1.

One process on CPU or one GPU (``python -m starclusters.cli train ...``), or one process
per GPU under ``torchrun --standalone --nproc_per_node=N -m starclusters.cli train ...``:
then each process binds to the GPU of its LOCAL_RANK, joins the process group (nccl on
GPUs, gloo on CPU) for the training and leaves it at the end. The config's GPU request is
checked before anything is read; only rank 0 writes the outputs and the log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from starclusters.errors import ConfigError, StarclustersError
from starclusters.logs import setup_logging, tune_allocator
from starclusters.model.settings import RUN_DEFAULTS

log = logging.getLogger(__name__)


def read_config_json(value: str) -> dict:
    """The config mapping of ``--config-json``: a JSON object itself, or a JSON file's path.

    It holds the sections training reads: bands, window_px, pixel_scale_arcsec,
    psf.oversampling, model and train. ConfigError naming the option if it is neither.
    """
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise ConfigError(
                f"--config-json: {value!r} is neither a JSON object nor an existing file; give "
                "one of them"
            )
        text = path.read_text()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--config-json: not valid JSON ({err}); check the quoting") from err
    if not isinstance(config, dict):
        raise ConfigError(f"--config-json: expected a JSON object, got {type(config).__name__}")
    return config


def launch_environment() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def check_launch(train: Mapping, world: int) -> None:
    """ConfigError naming ``train.gpus`` unless there is one process per requested GPU.

    train: the ``train`` config section; world: processes started (torchrun's WORLD_SIZE,
    1 without torchrun). On CPU any number of processes may train (gloo; for testing).
    """
    if not str(train.get("device", RUN_DEFAULTS["device"])).startswith("cuda"):
        return
    gpus = train.get("gpus", RUN_DEFAULTS["gpus"])
    if world != gpus:
        launch = (
            f"torchrun --standalone --nproc_per_node={gpus} -m starclusters.cli train ..."
            if isinstance(gpus, int) and gpus > 1
            else "python -m starclusters.cli train ..."
        )
        raise ConfigError(
            f"train.gpus: the config asks for {gpus} GPU(s), but {world} training process(es) "
            f"were started (WORLD_SIZE={world}); launch `{launch}` or set train.gpus to {world}"
        )


@contextmanager
def process_group(device: str, world: int, local_rank: int) -> Iterator[str]:
    """Join torchrun's process group for the duration; yields this process's device.

    world 1: nothing to join, ``device`` as given. Else nccl on GPUs, with the process
    bound to GPU ``local_rank`` (device "cuda:<local_rank>"), or gloo on CPU; the group is
    destroyed on the way out, also after an error.
    """
    if world == 1:
        yield device
        return
    import torch
    import torch.distributed as dist

    if torch.device(device).type == "cuda":
        torch.cuda.set_device(local_rank)
        gpu = torch.device("cuda", local_rank)
        dist.init_process_group("nccl", device_id=gpu)
        device = str(gpu)
    else:
        dist.init_process_group("gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()


def _train(args: argparse.Namespace) -> int:
    rank, world, local_rank = launch_environment()
    level = logging.INFO if rank == 0 else logging.WARNING
    setup_logging(args.log_file if rank == 0 else None, level)
    try:
        config = read_config_json(args.config_json)
        section = config.get("train", {})
        device = section.get("device", RUN_DEFAULTS["device"])
        check_launch(section, world)
        import torch

        from starclusters.io import write_table
        from starclusters.model.settings import train_settings
        from starclusters.model.stage import plot_history, train_model
        from starclusters.model.train import check_gpus

        # before joining the process group (train_model checks it again for library users)
        check_gpus(
            device, section.get("gpus", RUN_DEFAULTS["gpus"]), train_settings(section).batch_size
        )
        if args.threads:
            per_process = int(os.environ.get("LOCAL_WORLD_SIZE", world))
            torch.set_num_threads(max(1, args.threads // per_process))
        with process_group(device, world, local_rank) as dev:
            history = train_model(
                args.mocks,
                args.backgrounds,
                args.psfs,
                config,
                args.seed,
                args.checkpoint,
                args.model,
                device=dev,
                star_group_paths=args.star_groups,
            )
        if rank == 0:
            write_table(args.history, history)
            plot_history(history, args.plot)
    except StarclustersError as err:
        log.critical("%s", err)
        return 1
    return 0


def _detect(args: argparse.Namespace) -> int:
    setup_logging(args.log_file)
    try:
        from starclusters.detect.settings import DetectSettings

        settings = DetectSettings(
            mode=args.mode,
            step_px=args.step_px,
            tile_px=args.tile_px,
            batch_size=args.batch_size,
            device=args.device,
        )
        if args.catalog_dir is None and args.gallery is not None:
            raise ConfigError("--gallery: drawn from the catalog; give --catalog-dir too")
        import torch

        from starclusters.detect.stage import detect_images

        if args.threads:
            torch.set_num_threads(args.threads)
        detect_images(
            args.model,
            args.images,
            args.output,
            mask_path=args.mask,
            bands=args.bands,
            settings=settings,
        )
        if args.catalog_dir is not None:
            _write_catalog(args, args.output, args.catalog_dir)
    except StarclustersError as err:
        log.critical("%s", err)
        return 1
    return 0


def _catalog(args: argparse.Namespace) -> int:
    setup_logging(args.log_file)
    try:
        if args.gallery is not None and (args.model is None or not args.images):
            raise ConfigError("--gallery: needs --model and --images (the maps' network, images)")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        _write_catalog(args, args.maps, args.output_dir)
    except StarclustersError as err:
        log.critical("%s", err)
        return 1
    return 0


def _write_catalog(args: argparse.Namespace, maps: str, output_dir: str) -> None:
    """The catalog (and with --gallery its figure) of ``maps`` from the parsed options."""
    from starclusters.detect.candidates_stage import catalog_of_maps, gallery_of_images

    detect = {
        key: getattr(args, key)
        for key in CATALOG_KEYS + GALLERY_KEYS
        if getattr(args, key) is not None
    }
    if args.derived_thresholds is not None:
        given = [k for k in ("class_threshold", "visibility_threshold") if k in detect]
        if given:
            raise ConfigError(
                f"--derived-thresholds replaces --{given[0].replace('_', '-')}: the cut is "
                "the held-out test's; give one or the other"
            )
        detect["derived_thresholds"] = True
    geometry = {"source": "none"}
    if args.geometry is not None:
        geometry = {"source": "config", **dict(zip(GEOMETRY_OPTION, args.geometry, strict=True))}
    paths = catalog_of_maps(
        maps,
        output_dir,
        detect=detect,
        geometry=geometry,
        distance_mpc=args.distance_mpc,
        model_path=args.model,
        image_paths=args.images,
        bands=args.bands,
        test_metrics_path=args.derived_thresholds,
        mask_path=args.mask,
    )
    if args.gallery is not None:
        gallery_of_images(
            paths["candidates"],
            args.model,
            args.images,
            args.gallery,
            bands=args.bands,
            zeropoints_mag=args.zeropoints_mag,
            detect=detect,
        )


#: The catalog's ``detect`` keys that have an option of their own (--class-threshold, ...).
CATALOG_KEYS = (
    "class_threshold",
    "visibility_threshold",
    "smooth_sigma_px",
    "weight_window_px",
    "weight_sigma_px",
    "population_prior",
    "population_prior_shrink",
    "population_prior_smoothing",
    "recentre_radius_px",
)
GALLERY_KEYS = ("gallery_size", "gallery_field_arcsec")
#: galaxy_geometry keys of --geometry, in its order.
GEOMETRY_OPTION = ("centre_ra_deg", "centre_dec_deg", "inclination_deg", "position_angle_deg")


def _add_catalog_options(parser: argparse.ArgumentParser) -> None:
    """Options of the catalog step (thresholds, geometry, gallery); defaults from
    :class:`starclusters.detect.settings.CatalogSettings`."""
    from starclusters.detect.settings import CatalogSettings

    D = CatalogSettings().to_config()

    group = parser.add_argument_group(
        "catalog", "peaks and candidates (thesis §4.2.2; config keys detect.* of the same name)"
    )
    helps = {
        "class_threshold": "candidates have class above this",
        "visibility_threshold": "candidates have visibility above this",
        "smooth_sigma_px": "Gaussian σ of the class map's smoothing, px",
        "weight_window_px": "side of the window of a peak's weighted parameters, px (odd)",
        "weight_sigma_px": "σ of the distance weight in that window, px",
        "population_prior_shrink": "shrinkage of the A_V prior towards the training one",
        "recentre_radius_px": "move the peaks to the images' light centroid within this "
        "radius, px (needs --images; 0: keep the class-map peak pixel)",
        "gallery_size": "candidates in the gallery",
        "gallery_field_arcsec": "side of a gallery cut-out, arcsec",
    }
    for key, text in helps.items():
        kind = int if isinstance(D[key], int) else float
        group.add_argument(
            "--" + key.replace("_", "-"), type=kind, help=f"{text} (default: {D[key]})"
        )
    group.add_argument(
        "--population-prior",
        action=argparse.BooleanOptionalAction,
        help="read the candidates' age, A_V and mass under the galaxy's own A_V prior "
        f"(needs --model and --images; default: {D['population_prior']})",
    )
    group.add_argument(
        "--derived-thresholds",
        metavar="TEST_METRICS",
        help="cut the candidates where the network's held-out test puts it (the derived "
        "class and visibility thresholds in its test_metrics.parquet) instead of "
        "--class-threshold and --visibility-threshold (config: detect.derived_thresholds)",
    )
    group.add_argument(
        "--population-prior-smoothing",
        action=argparse.BooleanOptionalAction,
        help="smooth the A_V prior's EM estimate over neighbouring A_V bins (EMS; "
        f"default: {D['population_prior_smoothing']})",
    )
    group.add_argument(
        "--distance-mpc",
        type=float,
        help="distance to the galaxy, Mpc, for r_h in pc and densities (default: unknown, NaN)",
    )
    group.add_argument(
        "--geometry",
        nargs=4,
        type=float,
        metavar=("RA_DEG", "DEC_DEG", "INCLINATION_DEG", "PA_DEG"),
        help="the disk's centre, inclination and major-axis position angle (north through "
        "east), deg, for deprojected galactocentric distances; needs --distance-mpc "
        "(default: none, distances NaN)",
    )
    group.add_argument("--gallery", help="also draw the best candidates' gallery (PNG)")
    group.add_argument(
        "--zeropoints-mag",
        nargs="+",
        type=float,
        help="gallery colours: Vega magnitude of 1 count/s per band, in the model's band "
        "order (default: 0 each, colours in counts/s)",
    )


def _add_detect(commands) -> None:
    from starclusters.detect.settings import MODE_CHOICES, DetectSettings

    default = DetectSettings()
    detect = commands.add_parser(
        "detect",
        help="value maps of images with a trained model (sliding window, thesis §4.2.2)",
        description=(
            "Slide the trained network over images (one FITS per band, counts/s, on one "
            "common grid at the model's pixel scale, in the model's band order) and write "
            "the maps CLASS, VISIBILITY, LOG_AGE, LOG_MASS, AV and LOG_RH with the images' "
            "WCS; with --catalog-dir also the peaks and candidates (as `starclusters "
            "catalog`). Tiles run one after the other; windows done / total and the ETA "
            "are shown (a bar on a terminal, a log line every 30 s); memory per tile: see "
            "docs/detection.md."
        ),
    )
    detect.add_argument("--model", required=True, help="trained model (model.pt)")
    detect.add_argument("--images", nargs="+", required=True, help="one FITS image per band")
    detect.add_argument(
        "--bands", nargs="+", help="bands of the images (default: their BAND cards)"
    )
    detect.add_argument(
        "--mask", help="uint8 mask on the same grid (bit 1 blank; any bit: no value)"
    )
    detect.add_argument("--output", required=True, help="maps FITS to write")
    detect.add_argument(
        "--mode",
        choices=MODE_CHOICES,
        default=default.mode,
        help="detection mode: exact (per window), fast (fully convolutional; needs a "
        "network trained with model.padding valid and model.input_norm fixed) or auto "
        f"(fast where the network allows it, else exact; default: {default.mode})",
    )
    detect.add_argument(
        "--step-px", type=int, default=default.step_px, help="px between window centres"
    )
    detect.add_argument(
        "--tile-px", type=int, default=default.tile_px, help="side of a tile's core, px"
    )
    detect.add_argument(
        "--batch-size", type=int, default=default.batch_size, help="windows per forward pass"
    )
    detect.add_argument("--device", choices=["cpu", "cuda"], default=default.device)
    detect.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    detect.add_argument("--log-file", help="log file; messages also go to stderr")
    detect.add_argument(
        "--catalog-dir",
        help="also write peaks.parquet, candidates.parquet and candidates.reg of the maps "
        "into this folder (the catalog options below apply)",
    )
    _add_catalog_options(detect)
    detect.set_defaults(run=_detect)


def _add_catalog(commands) -> None:
    catalog = commands.add_parser(
        "catalog",
        help="peaks and candidates of value maps (thesis §4.2.2), with DS9 regions",
        description=(
            "Find the peaks of the smoothed class map of MAPS (written by `starclusters "
            "detect`) with their weighted parameters and keep those above the class and "
            "visibility thresholds, best first: peaks.parquet, candidates.parquet and "
            "candidates.reg (DS9, FK5) in --output-dir, as the workflow's rule find_peaks. "
            "With --images the peaks move to the images' light centroids. "
            "With --model and --images (the network and images of the maps) the candidates' "
            "age, A_V and mass are read under the galaxy's own A_V prior, and --gallery "
            "can draw the best ones."
        ),
    )
    catalog.add_argument("maps", help="value maps FITS (starclusters detect --output)")
    catalog.add_argument("--output-dir", required=True, help="folder of the catalog files")
    catalog.add_argument("--model", help="the model that made the maps (model.pt)")
    catalog.add_argument(
        "--images",
        nargs="+",
        help="the maps' images, one FITS per band (for the recentring; with --model also "
        "the population prior and the gallery)",
    )
    catalog.add_argument(
        "--bands", nargs="+", help="bands of the images (default: their BAND cards)"
    )
    catalog.add_argument(
        "--mask", help="uint8 mask of the images (any bit set: not used in the recentring)"
    )
    catalog.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    catalog.add_argument("--log-file", help="log file; messages also go to stderr")
    _add_catalog_options(catalog)
    catalog.set_defaults(run=_catalog)


def _completeness(args: argparse.Namespace) -> int:
    setup_logging(None)
    try:
        import numpy as np

        from starclusters.artificial.selection import FEATURE_UNITS, SelectionFunction

        if args.log_mass_msun is None and args.mass_at is None:
            raise ConfigError("give --log-mass-msun (P at that mass) or --mass-at (the mass at P)")
        if args.mass_at is not None and not 0 < args.mass_at <= 1:
            raise ConfigError(f"--mass-at: {args.mass_at:g} is not a probability in (0, 1]")
        if args.rh_arcsec is not None and not args.rh_arcsec > 0:
            raise ConfigError(f"--rh-arcsec: {args.rh_arcsec:g}; give a radius > 0 arcsec")
        selection = SelectionFunction.read(args.selection)
        background = args.background_counts_s
        if background is not None:
            # ≤ 0 (a sky-subtracted empty field): below every node, clipped to the lowest
            background = np.log10(background) if background > 0 else -np.inf
        point = {
            "log_age_yr": args.log_age_yr,
            "log_mass_msun": args.log_mass_msun,
            "av_mag": args.av_mag,
            "log_rh_arcsec": None if args.rh_arcsec is None else np.log10(args.rh_arcsec),
            "log_background_counts_s": background,
        }
        meta = selection.meta
        print(
            f"selection function {args.selection} ({meta.get('detected_column', '?')}, "
            f"{meta.get('n_injections', '?')} injections)"
        )
        for name, value in point.items():
            if value is None and name == "log_mass_msun":
                continue  # only --mass-at
            notes = [] if value is not None else ["median of the injections"]
            value = point[name] = selection.medians[name] if value is None else float(value)
            lo, hi = selection.ranges[name]
            if not lo <= value <= hi:
                notes.append(f"outside the grid: clipped to [{lo:.4g}, {hi:.4g}]")
            note = f"  ({'; '.join(notes)})" if notes else ""
            print(f"  {name} = {value:.4g} {FEATURE_UNITS[name]}{note}")
        nuisances = {n: point[n] for n in ("av_mag", "log_rh_arcsec", "log_background_counts_s")}
        if args.log_mass_msun is not None:
            p = float(selection(point["log_age_yr"], point["log_mass_msun"], **nuisances))
            print(f"p_detected = {p:.4f}")
        if args.mass_at is not None:
            mass = float(selection.log_mass_at(args.mass_at, point["log_age_yr"], **nuisances))
            if np.isfinite(mass):
                print(f"log_mass_msun at p_detected = {args.mass_at:g}: {mass:.3f}")
            else:
                lo, hi = selection.ranges["log_mass_msun"]
                p_lo = float(selection(point["log_age_yr"], lo, **nuisances))
                where = (
                    f"P ≥ {args.mass_at:g} already at the grid's lowest mass, log M = {lo:.3g}"
                    if p_lo >= args.mass_at
                    else f"P stays below {args.mass_at:g} up to the grid's highest mass, "
                    f"log M = {hi:.3g}"
                )
                print(f"log_mass_msun at p_detected = {args.mass_at:g}: nan ({where})")
    except StarclustersError as err:
        log.critical("%s", err)
        return 1
    return 0


def _add_completeness(commands) -> None:
    query = commands.add_parser(
        "completeness",
        help="detection probability from the artificial test's selection function",
        description=(
            "Print P(detected) of the selection function (the gridded table of the "
            "artificial-cluster test, interpolated linearly) at one age, mass, A_V, r_h and "
            "background; a value left out is the injections' median, one outside the grid "
            "is clipped onto its edge. With --mass-at P: the log mass at which P(detected) "
            "first reaches P at that age."
        ),
    )
    query.add_argument("--selection", required=True, help="selection function table (Parquet)")
    query.add_argument("--log-age-yr", type=float, required=True, help="log10(age / yr)")
    query.add_argument("--log-mass-msun", type=float, help="log10(mass / M_sun)")
    query.add_argument("--av-mag", type=float, help="extinction A_V, mag (default: median)")
    query.add_argument(
        "--rh-arcsec", type=float, help="half-light radius, arcsec (default: median)"
    )
    query.add_argument(
        "--background-counts-s",
        type=float,
        help="local background, counts/s per pixel (default: median; <= 0: the lowest)",
    )
    query.add_argument(
        "--mass-at", type=float, help="also print the log mass at which P(detected) reaches this"
    )
    query.set_defaults(run=_completeness)


def package_version() -> str:
    """The installed starclusters version (package metadata); "unknown" if not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("starclusters")
    except PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starclusters",
        description="Find star clusters in multi-band galaxy images with a CNN.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train",
        help="train the network on a mock bank and background cutouts (resumable)",
        description=(
            "Train the cluster CNN, resuming from --checkpoint if it exists; export the best "
            "model, the history and its plot. Several GPUs: launch with `torchrun "
            "--standalone --nproc_per_node=N -m starclusters.cli train ...` and train.gpus: N."
        ),
    )
    train.add_argument("--mocks", nargs="+", required=True, help="mock shard FITS cubes")
    train.add_argument("--backgrounds", nargs="+", required=True, help="background shard cubes")
    train.add_argument("--psfs", nargs="+", required=True, help="one PSF FITS per band, in order")
    train.add_argument(
        "--star-groups",
        nargs="*",
        default=[],
        help="star-group shard cubes (hard negatives; needed with train.star_group_fraction > 0)",
    )
    train.add_argument(
        "--config-json",
        required=True,
        help="JSON object or file: bands, window_px, pixel_scale_arcsec, psf, model, train",
    )
    train.add_argument("--seed", type=int, required=True, help="seed of all randomness")
    train.add_argument("--checkpoint", required=True, help="per-epoch checkpoint (kept)")
    train.add_argument("--model", required=True, help="the best model (model.pt)")
    train.add_argument("--history", required=True, help="per-epoch history (Parquet)")
    train.add_argument("--plot", required=True, help="loss and accuracy curves (PNG)")
    # not --log: torchrun's parser reads the whole command line and takes "--log" for an
    # ambiguous abbreviation of its --log-dir etc. (tests check every option here for that)
    train.add_argument("--log-file", help="log file (rank 0); messages also go to stderr")
    train.add_argument(
        "--threads", type=int, help="CPU threads of all processes together (default: torch's)"
    )
    train.set_defaults(run=_train)
    _add_detect(commands)
    _add_catalog(commands)
    _add_completeness(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (1 after a config or input error)."""
    args = _parser().parse_args(argv)
    tune_allocator()  # torch's CPU passes reuse freed memory (starclusters.logs)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
