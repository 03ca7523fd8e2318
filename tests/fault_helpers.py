"""Test-only callbacks that real ``python -m src.run`` runs load with ``+callbacks.<name>._target_=fault_helpers.…``
(the ``fault_env`` fixture puts this directory on PYTHONPATH): hold a run at a known batch for a signal, record what
each DDP rank drew, break one rank on purpose."""
from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch


class PauseAfterBatch(pl.Callback):
    """Prints every finished training batch; after batch ``batch`` of epoch ``epoch`` it says ``paused`` and waits
    (at most ``seconds``) until a SIGTERM has been received, so a test signals the run at a known batch however
    slowly the machine runs. Other signals (SIGUSR1, SIGKILL) do their work during the wait."""

    def __init__(self, epoch: int, batch: int, seconds: float = 120):
        self.epoch, self.batch, self.seconds = epoch, batch, seconds

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        print(f"\nfinished epoch={trainer.current_epoch} batch={batch_idx} step={trainer.global_step}", flush=True)
        if (trainer.current_epoch, batch_idx) != (self.epoch, self.batch):
            return
        print("\nwaiting for a signal", flush=True)
        deadline = time.monotonic() + self.seconds
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.05)


class RecordRankDraws(pl.Callback):
    """Per rank, into ``dirpath``: ``init_rank<r>.pt``, the model's weights as built (before DDP synchronises
    them), and ``latents_rank<r>.pt``, what the family drew from the training RNG for its first batch: InfoGAN's
    codes (``sample_codes``), VAE-GAN's ε and prior codes (``sample_noise``), BiGAN's prior codes
    (``sample_prior``), ProGAN's and T2F's generator inputs (``sample_inputs``). Evaluation draws (an explicit ``generator``) are not recorded."""

    DRAWS = ("sample_codes", "sample_noise", "sample_prior", "sample_inputs")

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        rank = trainer.global_rank
        torch.save({k: v.detach().clone() for k, v in pl_module.state_dict().items()}, self.dirpath / f"init_rank{rank}.pt")
        name = next(name for name in self.DRAWS if hasattr(pl_module, name))
        original = getattr(pl_module, name)
        latents = self.dirpath / f"latents_rank{rank}.pt"

        def recording(*args, **kwargs):
            drawn = original(*args, **kwargs)
            generator = kwargs.get("generator", args[1] if len(args) > 1 else None)
            if generator is None and not latents.exists():  # the training stream's first draw
                torch.save(drawn, latents)
            return drawn

        setattr(pl_module, name, recording)


def probe_layer(tmp_path: Path) -> dict[str, str]:
    """The config layer that adds :class:`RecordRankDraws` to a run, writing into ``<tmp_path>/draws`` (the run's
    environment needs ``fault_env``, so that this module is importable there)."""
    return {"+callbacks.probe._target_": "fault_helpers.RecordRankDraws",
            "+callbacks.probe.dirpath": str(tmp_path / "draws")}


def assert_ranks_drew_their_own(draws: Path, what: str) -> None:
    """The two ranks of a ``RecordRankDraws`` run started from the same weights and drew different latents."""
    init = [torch.load(draws / f"init_rank{r}.pt") for r in (0, 1)]
    assert init[0].keys() == init[1].keys()
    for key in init[0]:
        assert torch.equal(init[0][key], init[1][key]), f"initial weights differ across ranks at {key}"
    first, second = (torch.load(draws / f"latents_rank{r}.pt") for r in (0, 1))
    if isinstance(first, dict):  # T2F: the captions come from the data (each rank its own), the noise is drawn
        first, second = ([draw[k] for k in ("z", "noise") if k in draw] for draw in (first, second))
    first, second = (list(x) if isinstance(x, (tuple, list)) else [x] for x in (first, second))
    assert first and len(first) == len(second)
    for a, b in zip(first, second):
        assert a.shape == b.shape and not torch.equal(a, b), f"both ranks drew the same {what}"


class NaNImagesOnRank(pl.Callback):
    """Turns the real images of one training batch into NaNs on one rank only: a real NaN loss on that rank."""

    def __init__(self, rank: int = 1, batch: int = 1):
        self.rank, self.batch = rank, batch

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and batch_idx == self.batch:
            batch["image"].fill_(float("nan"))
