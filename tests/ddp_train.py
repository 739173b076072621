"""One rank of a DDP training run on CPU (gloo), for tests/test_train.py; run under torchrun:

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_train.py \
        --checkpoint C.pt --out DIR [--epochs E] [--stop-after K] [--straight S.pt]
        [--nan-on-rank R]

Trains test_train's tiny network on its synthetic data through the same process-group set-up
as ``starclusters train`` and writes DIR/rank<r>.json: the history, the best epoch and a hash
of the returned weights (or the error that stopped the rank); with --straight, first an
uninterrupted run into S.pt, reported under "straight" (one launch instead of two).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

import starclusters.model.train as train_module
from starclusters.cli import launch_environment, process_group
from starclusters.model.codec import ParameterGrids


def weights_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--stop-after", type=int)
    parser.add_argument("--straight")
    parser.add_argument("--nan-on-rank", type=int)
    args = parser.parse_args()

    from test_train import SPEC, _settings, make_data

    rank, world, local_rank = launch_environment()
    if args.nan_on_rank == rank:  # this rank's loss turns non-finite at the first step
        real_loss = train_module.loss

        def nan_loss(outputs, targets):
            total, per_head = real_loss(outputs, targets)
            return total * float("nan"), per_head

        train_module.loss = nan_loss
    settings = _settings(epochs=args.epochs, steps_per_epoch=4, lr_start=3e-3, lr_end=1e-3)
    report = {"rank": rank, "world": world}
    data = make_data()

    def run(checkpoint, stop_after=None) -> dict:
        result = train_module.train(
            SPEC,
            ParameterGrids(),
            data,
            settings,
            checkpoint,
            11,
            device,
            stop_after_epochs=stop_after,
        )
        return {
            "history": json.loads(result.history.to_json(orient="records")),
            "best_epoch": result.best_epoch,
            "weights": weights_hash(result.model),
        }

    with process_group("cpu", world, local_rank) as device:
        try:
            if args.straight:
                report["straight"] = run(args.straight)
            report.update(run(args.checkpoint, args.stop_after))
        except FloatingPointError as err:
            report["error"] = str(err)
    Path(args.out, f"rank{rank}.json").write_text(json.dumps(report))
    return 3 if "error" in report else 0


if __name__ == "__main__":
    sys.exit(main())
