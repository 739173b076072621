"""Training (train.smk): outputs, and the job resources of train and evaluate_model.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""


def model_outputs():
    """The trained network, its history and its test on held-out mocks, with figures."""
    names = ["model.pt", "history.parquet", "training.png", "test_predictions.parquet"]
    names += [
        "test_metrics.parquet",
        "test_parameters.png",
        "test_class_visibility.png",
    ]
    names += ["test_calibration.png"]
    return expand("results/{galaxy}/model/{name}", galaxy=GALAXY, name=names)


def network_job_config(model, train, **sections):
    """What shapes the network's training (or its test): the bands, window, pixel scale and
    PSF oversampling, the given `model` and `train` keys and further sections; train passes
    it to `starclusters train` as JSON, evaluate_model to its script as it is."""
    return {
        "bands": BANDS,
        "window_px": config["window_px"],
        "pixel_scale_arcsec": config["pixel_scale_arcsec"],
        "psf": {"oversampling": PSF["oversampling"]},
        "model": model,
        "train": train,
        **sections,
    }


# --- job resources of train and evaluate_model (the shared ones: common.smk)

#: CPU threads per training process on a GPU: batches are drawn on the GPU (docs/model.md),
#: the CPU only feeds it, checkpoints and logs.
TRAIN_THREADS_PER_GPU = 4


def bank_mb():
    """MB of the mock bank, backgrounds and star groups as the training holds them
    (float32 cubes)."""
    mocks, backgrounds = config["mocks"], config["backgrounds"]
    groups = config["star_groups"]
    n_groups = (
        groups["n_shards"] * groups["per_shard"] if star_group_fraction() > 0 else 0
    )
    return cube_mb(
        mocks["n_shards"] * mocks["per_shard"]
        + backgrounds["n_shards"] * backgrounds["per_shard"]
        + n_groups
    )


def train_processes():
    """Training processes: one per GPU with device cuda, else one."""
    section = config["train"]
    return section["gpus"] if section["device"] == "cuda" else 1


def train_gpus():
    """GPUs of the train job (sbatch --gpus): train.gpus with device cuda, else 0."""
    return train_processes() if config["train"]["device"] == "cuda" else 0


def train_threads():
    """CPU threads (= Slurm CPUs) of the train job: TORCH_THREADS on the CPU (torch's pool),
    TRAIN_THREADS_PER_GPU per process on GPUs."""
    if config["train"]["device"] == "cuda":
        return TRAIN_THREADS_PER_GPU * train_processes()
    return TORCH_THREADS


def train_mem_mb(wildcards, attempt):
    """Host memory of the train job, MB: every process holds the Python runtime and the
    bank (twice while the shards are read and joined: starclusters.model.data
    _read_cubes), on the CPU also a batch's activations for the backward pass (4 copies of
    every layer's output); MEM_SLACK more, half as much again on a retry. The default
    config: 3.0 GB (measured: 1.9 GB max RSS); config/m83.yaml: 16.7 GB per GPU."""
    section = config["train"]
    need = JOB_BASE_MB + 2 * bank_mb()
    if section["device"] != "cuda":
        # float32 layer outputs, BatchNorm's and ReLU's copies and their gradients
        per_window = 4 * 4 * network_costs()["activations"]
        need += section["batch_size"] * per_window / 2**20
    per_process = MEM_SLACK * need * (1 + 0.5 * (attempt - 1))
    return math.ceil(train_processes() * per_process)


def train_runtime(wildcards, attempt):
    """Minutes of the train job: reading the bank, then epochs × steps_per_epoch ×
    batch_size images forward and backward (3 × the forward FLOPs) and val_size forward
    per epoch, at the device's rate. A job past it resumes from its checkpoint."""
    section = config["train"]
    per_window = network_costs()["forward"]
    images = section["epochs"] * section["steps_per_epoch"] * section["batch_size"]
    flops = per_window * (3 * images + section["epochs"] * section["val_size"])
    seconds = SECONDS_PER_BANK_MB * bank_mb() + network_seconds(
        flops, section["device"], TORCH_THREADS, max(1, train_gpus())
    )
    return runtime_minutes(seconds, attempt)


def evaluate_runtime(wildcards, input, attempt):
    """Minutes of evaluate_model: reading the bank, the held-out mocks and backgrounds
    forward (one GPU with train.device cuda, else TORCH_THREADS threads)."""
    n = config["evaluate"]["n_mocks"] + config["evaluate"]["n_backgrounds"]
    flops = n * network_costs()["forward"]
    seconds = SECONDS_PER_BANK_MB * input.size_mb + network_seconds(
        flops, config["train"]["device"], TORCH_THREADS
    )
    return runtime_minutes(seconds, attempt)


def evaluate_gpus():
    """GPUs of evaluate_model: one with train.device cuda, else 0."""
    return 1 if config["train"]["device"] == "cuda" else 0
