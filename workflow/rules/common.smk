"""Shared helpers: the library on sys.path, the config's validation and checks, what
several stages read (sections, galaxies, paths) and the job resources. Each stage's own
input functions, settings and output lists are in helpers/<stage>.smk, included at the end.
"""

import os
import sys
from pathlib import Path

# The library lives in src/; make it importable for this process and for the jobs
# it starts (also inside --use-conda environments, which hold only the dependencies).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# This sets the variable, it needs no `envvars:`; every job re-parses this file.
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from starclusters.config import check_config, validate_config  # noqa: E402

# The schema (defaults filled in; a short message naming the key, not Snakemake's dump of
# the schema) and every cross-key check, before any job starts: the same checks as
# starclusters.config.load_config and `python -m starclusters.config` (make run).
validate_config(config, Path(workflow.basedir) / "config/schema/config.schema.yaml")
check_config(config)

GALAXY = config["galaxy"]
BANDS = list(config["bands"])
PHOT = config["photometry"]
PSF = config["psf"]
MOSAIC = config["mosaic"]


def section_settings(name, *keys):
    """The named keys of the config section `name` (all of it without keys): the one shape in
    which rules get a section's settings, so that only the keys a rule uses rerun it."""
    section = config[name]
    return {key: section[key] for key in keys} if keys else dict(section)


def band_subset(mapping):
    """Only the configured bands' entries, so that unused bands never trigger reruns."""
    return {band: mapping[band] for band in BANDS}


from starclusters.detect.settings import DetectSettings, resolve_mode  # noqa: E402

# detect.mode auto: the mode the config's model section runs (one rule, resolve_mode)
DETECT = resolve_mode(
    DetectSettings.from_config(config["detect"]), config["model"], "the config's model"
)


# --- sections and galaxies that several stages read (checked by check_config above)

from starclusters.detect.arms import arms_section  # noqa: E402


def arms_config():
    """The `arms` section (dust lanes for distances across the arms); without one, the
    synthetic galaxy's own lanes, or none."""
    return arms_section(config)


def arm_inputs(wildcards):
    """Files the arm geometry is read from: the synthetic galaxy's lanes, or the user's."""
    section = arms_config()
    if section.get("source") == "synthetic":
        return {"arms": f"results/{wildcards.galaxy}/mosaic/arms.parquet"}
    return {
        key: section[key]
        for key in ("lanes_file", "regions_file")
        if section.get("source") == "files" and section.get(key)
    }


from starclusters.synthetic.validation import (  # noqa: E402
    robustness_galaxies,
    validation_galaxies,
)

# the validation galaxies (validation.smk): name -> their seed and synthetic settings
VALIDATION = validation_galaxies(config)
# the robustness matrix's galaxies (robustness.smk): a validation galaxy with one observing
# factor changed each, built and scored like the validation galaxies, apart from their mean
ROBUSTNESS = robustness_galaxies(config)
SYNTHETIC_FIELDS = VALIDATION | ROBUSTNESS


def score_fields():
    """The galaxies with a truth to score: the training galaxy (when synthetic) and each
    validation galaxy."""
    return (["training"] if MOSAIC["source"] == "synthetic" else []) + list(VALIDATION)


def field_dir(galaxy, field):
    """Where a scored galaxy's products live: the run's own, or a validation galaxy's."""
    return (
        f"results/{galaxy}"
        if field == "training"
        else f"results/{galaxy}/validation/{field}"
    )


# --- job resources: threads, memory, runtime and GPUs from the config and the data size
# (docs/slurm.md). Every rule declares mem_mb and runtime; the Slurm profile only names the
# account and the partitions, and requests --cpus-per-task = the job's threads.

import math  # noqa: E402

from starclusters.detect.tiles import (  # noqa: E402
    RUNTIME_BYTES,
    halo_px,
    tile_memory_mb,
)
from starclusters.model.settings import train_settings  # noqa: E402
from starclusters.model.spec import (  # noqa: E402
    BOTTLENECK_EXPANSION,
    STEM_KERNEL_PX,
    n_head_outputs,
    spec_defaults,
)

#: Memory of a job besides its data, MB: Python with numpy, astropy, pandas and torch
#: (starclusters.detect.tiles.RUNTIME_BYTES, 1000 MB) and room for small inputs: the
#: default config's jobs peaked at 0.2–1.3 GB max RSS (results/*/benchmarks/*.tsv; with
#: small inputs detection_gallery 1.24 GB, artificial_shard 1.22 GB).
JOB_BASE_MB = 1.2 * RUNTIME_BYTES / 2**20
#: Memory asked for beyond the estimate (allocator slack), as tile_memory_mb.
MEM_SLACK = 1.25
#: Minutes every job gets before its work: queueing of its steps, Snakemake starting inside
#: the job (20–30 s on a busy 2-core node), imports, writing outputs.
JOB_BASE_MIN = 10
#: Runtime asked for = SAFETY × the estimated work (the rates below are lower bounds).
RUNTIME_SAFETY = 2
#: Seconds per MB of input of the rules that process images and tables (the slowest per MB
#: on the default config: the peer's photometry, 57 s for 45 MB beside other jobs).
SECONDS_PER_INPUT_MB = 1.5
#: Seconds per MB of input of the rules that only read the mock bank and backgrounds.
SECONDS_PER_BANK_MB = 0.05
#: Network FLOP/s per CPU thread: measured ≥ 20 GFLOP/s per thread for a training step of
#: the embedded default's network under load (docs/BENCHMARKS.md); half of it here.
CPU_FLOPS_PER_THREAD = 10e9
#: Network FLOP/s per GPU (bf16): not measured (no GPU in these sessions); a twentieth of
#: the 56 TFLOP/s that the H100 target of 20,000 training images/s implies
#: (docs/BENCHMARKS.md), for the index gathers and batch composition beside the network.
GPU_FLOPS = 2.5e12
#: CPU threads of the rules that use torch's thread pool on the CPU (training, evaluation,
#: gallery); tile jobs run one thread each (docs/detection.md).
TORCH_THREADS = 2


def network_spec():
    """The config's network (model section over NetworkSpec's defaults) as plain values."""
    return {**spec_defaults(), **config["model"]}


def network_costs():
    """What one window costs the config's network, without torch: a dict of

    - forward: FLOPs of one window forward (2 × multiply-adds of the 7×7 stem at
      window_px², the torchvision bottlenecks at window_px / 2^(i+1), the 1×1 conv before
      the stride at the input's side; fc and heads). The thesis network: 0.96 GFLOP, as
      torch.utils.flop_counter gives (docs/BENCHMARKS.md);
    - conv_per_pixel: FLOPs of every conv weight once, per pixel: the fast mode evaluates
      the convolutions at every pixel of a tile's region;
    - head: FLOPs of fc and heads, per window centre;
    - activations: floats of every layer's output for one window (what training keeps
      for the backward pass, besides BatchNorm's and ReLU's copies).

    Padding ignored (valid padding only shrinks the maps): upper bounds.
    """
    spec = network_spec()
    bands, size = len(BANDS), config["window_px"]
    widths = spec["stage_widths"] or [
        c // BOTTLENECK_EXPANSION for c in spec["stage_channels"]
    ]
    stem = spec["stem_channels"]
    macs = bands * stem * STEM_KERNEL_PX**2 * size**2
    per_pixel = bands * stem * STEM_KERNEL_PX**2
    inplanes, side = stem, math.ceil(size / 2)
    activations = stem * size**2 + stem * side**2
    for i, (blocks, channels, width) in enumerate(
        zip(spec["stage_blocks"], spec["stage_channels"], widths)
    ):
        out_side = side if i == 0 else math.ceil(side / 2)
        for b in range(blocks):
            cin, in_side = (inplanes, side) if b == 0 else (channels, out_side)
            macs += cin * width * in_side**2
            macs += (9 * width * width + width * channels) * out_side**2
            per_pixel += cin * width + 9 * width * width + width * channels
            activations += width * in_side**2 + (width + channels) * out_side**2
            if b == 0 and (i > 0 or inplanes != channels):
                macs += cin * channels * out_side**2
                per_pixel += cin * channels
                activations += channels * out_side**2
        inplanes, side = channels, out_side
    n_out = n_head_outputs(spec.get("grids"))
    head = inplanes * spec["fc_width"] + spec["fc_width"] * n_out
    return {
        "forward": 2 * (macs + head),
        "conv_per_pixel": 2 * per_pixel,
        "head": 2 * head,
        "activations": activations + spec["fc_width"] + n_out,
    }


def network_seconds(flops, device, threads=1, gpus=1):
    """Seconds of ``flops`` network FLOPs on ``device`` (cpu: ``threads`` threads)."""
    rate = gpus * GPU_FLOPS if device == "cuda" else threads * CPU_FLOPS_PER_THREAD
    return flops / rate


def runtime_minutes(seconds, attempt=1):
    """The runtime to ask for, minutes: JOB_BASE_MIN + RUNTIME_SAFETY × the estimated
    seconds; every retry (Snakemake's attempt) asks for that much again."""
    return attempt * (JOB_BASE_MIN + math.ceil(RUNTIME_SAFETY * seconds / 60))


def job_mem_mb(per_input=3.0, extra_mb=0.0):
    """A mem_mb resource: the Python runtime, ``per_input`` × the job's input (MB) and
    ``extra_mb`` (what it makes beyond its inputs; a number or a function of the
    wildcards), plus MEM_SLACK; half as much again on every retry (a job killed for its
    memory gets more)."""

    def mem_mb(wildcards, input, attempt):
        extra = extra_mb(wildcards) if callable(extra_mb) else extra_mb
        need = JOB_BASE_MB + per_input * input.size_mb + extra
        return math.ceil(MEM_SLACK * need * (1 + 0.5 * (attempt - 1)))

    return mem_mb


def job_runtime(seconds_per_mb=SECONDS_PER_INPUT_MB, work_s=0.0):
    """A runtime resource (minutes): ``seconds_per_mb`` × the job's input plus ``work_s``
    seconds of computation, through runtime_minutes."""

    def runtime(wildcards, input, attempt):
        return runtime_minutes(seconds_per_mb * input.size_mb + work_s, attempt)

    return runtime


def cube_mb(n_images):
    """MB of ``n_images`` float32 windows of every band (a mock shard, a background shard)."""
    return n_images * len(BANDS) * config["window_px"] ** 2 * 4 / 2**20


def detect_flops(height, width):
    """Network FLOPs of the value maps of a height × width px image, tile by tile (exact
    mode: every step_px-th window; fast: the convolutions at every pixel of each tile's
    region and the heads at every centre)."""
    costs = network_costs()
    tile, step = DETECT.tile_px, DETECT.step_px
    centres = math.ceil(height / step) * math.ceil(width / step)
    if DETECT.mode != "fast":
        return centres * costs["forward"]
    halo = halo_px(config["window_px"], step)
    tiles_y, tiles_x = math.ceil(height / tile), math.ceil(width / tile)
    region = (height + 2 * halo * tiles_y) * (width + 2 * halo * tiles_x)
    return region * costs["conv_per_pixel"] + centres * costs["head"]


def tile_runtime(wildcards, attempt):
    """Minutes of one tile job (a full tile_px² core: the last tiles are smaller)."""
    flops = detect_flops(DETECT.tile_px, DETECT.tile_px)
    return runtime_minutes(network_seconds(flops, DETECT.device), attempt)


def image_runtime(wildcards, input, attempt):
    """Minutes of the value maps of a whole image in one job (validation_maps, and
    artificial_maps per layer): its side from the size of its float32 bands."""
    pixels = input.size_mb * 2**20 / (4 * len(BANDS) + 1)
    side = math.ceil(math.sqrt(pixels))
    seconds = SECONDS_PER_INPUT_MB * input.size_mb + network_seconds(
        detect_flops(side, side), DETECT.device
    )
    return runtime_minutes(seconds, attempt)


def detect_gpus():
    """GPUs of a detection job: one with detect.device cuda, else 0."""
    return 1 if DETECT.device == "cuda" else 0


def synthetic_extra_mb(section):
    """MB a synthetic galaxy's rendering holds beyond the runtime: ~30 float32 images of
    its shape per band (measured: 0.3 GB for the default 1024² galaxy in 3 bands)."""
    height, width = section["shape_px"]
    return 30 * height * width * 4 * len(BANDS) / 2**20


def mock_render_seconds(n_mocks):
    """Seconds to render ``n_mocks`` mocks on one thread (measured ~21 ms each on the
    default config: 1,000 per shard in 21 s); five times that."""
    return 0.1 * n_mocks


# --- each stage's own helpers (in the Snakefile's include order of the stages)


include: "helpers/photometry.smk"
include: "helpers/mocks.smk"
include: "helpers/mosaic.smk"
include: "helpers/train.smk"
include: "helpers/detect.smk"
include: "helpers/artificial.smk"
include: "helpers/report.smk"
include: "helpers/validation.smk"
include: "helpers/baseline.smk"
include: "helpers/scorecard.smk"
include: "helpers/robustness.smk"
