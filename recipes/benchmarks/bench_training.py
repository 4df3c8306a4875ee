"""What Lightning and the fused upsampler cost in training, each as a ratio measured side by side.

Usage:
    python recipes/benchmarks/bench_training.py                 # a few minutes on 2 CPU cores
    python recipes/benchmarks/bench_training.py --rounds 7 --out leaderboards/bench_training.md

1. One ``GANTask`` training iteration (inside ``Trainer.fit``: data loading, both optimiser
   steps, logging) / one iteration of a plain PyTorch loop that trains an identical generator
   and discriminator on the same batches (goal ≤ 1.10× on CPU). Per-iteration times are taken
   between consecutive batches once the loop is warm; rounds alternate the two loops.
2. A DCGAN-64 generator forward+backward with all ``nearest_conv`` stages / the same with all
   ``deconv`` stages (goal ≤ 1.3×: the fused resize-convolution makes this possible), interleaved.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._lightning import NAMESPACE, pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lightning_checkerboard import __version__
from lightning_checkerboard._io import atomic_write_text
from lightning_checkerboard.models import DCGANGenerator
from lightning_checkerboard.tasks import GANTask

LIGHTNING_GOAL = 1.10
UPSAMPLER_GOAL = 1.3


class _IterationTimer(pl.Callback):
    """Wall time between the starts of consecutive training batches."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


def _loader(data: torch.Tensor, batch: int) -> DataLoader:
    return DataLoader(data, batch_size=batch, shuffle=True, drop_last=True,
                      generator=torch.Generator().manual_seed(0))


def _lightning_iterations(task: GANTask, data: torch.Tensor, batch: int, steps: int) -> list[float]:
    timer = _IterationTimer()
    trainer = pl.Trainer(
        max_steps=steps * task.optimizer_steps_per_iteration, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], accelerator="cpu", devices=1,
    )
    trainer.fit(task, _loader(data, batch))
    return timer.times[2:]  # the first iterations pay for lazy initialisation


def _plain_iterations(gen, disc, data: torch.Tensor, batch: int, steps: int, latent: int) -> list[float]:
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    times, last = [], None
    for i, real in enumerate(_loader(data, batch)):
        if i == steps:
            break
        now = time.perf_counter()
        if last is not None:
            times.append(now - last)
        last = now
        fake = gen(torch.randn(real.shape[0], latent))
        d_loss = F.softplus(-disc(real)).mean() + F.softplus(disc(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for p in disc.parameters():
            p.requires_grad_(False)
        g_loss = F.softplus(-disc(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for p in disc.parameters():
            p.requires_grad_(True)
        # Read the losses like the task does when it logs them.
        float(d_loss.detach()), float(g_loss.detach())
    return times[2:]


def bench_lightning(rounds: int, steps: int, batch: int, image_size: int) -> dict[str, float]:
    data = torch.rand(batch * (steps + 1), 3, image_size, image_size) * 2 - 1
    torch.manual_seed(0)
    template = GANTask("nearest_conv", image_size=image_size)
    lightning, plain, ratios = [], [], []
    for _ in range(rounds):
        task = copy.deepcopy(template)
        gen, disc = copy.deepcopy(template.generator), copy.deepcopy(template.discriminator)
        a = statistics.median(_lightning_iterations(task, data, batch, steps))
        b = statistics.median(_plain_iterations(gen, disc, data, batch, steps, template.hparams.latent_dim))
        lightning.append(a)
        plain.append(b)
        ratios.append(a / b)
    return {"ratio": statistics.median(ratios), "lightning": statistics.median(lightning),
            "plain": statistics.median(plain), "ratios": ratios}


def bench_upsampler(rounds: int, batch: int) -> dict[str, float]:
    torch.manual_seed(0)
    gens = {name: DCGANGenerator(name, image_size=64) for name in ("nearest_conv", "deconv")}
    z = torch.randn(batch, 100)

    def step(gen) -> float:
        start = time.perf_counter()
        gen.zero_grad(set_to_none=True)
        gen(z).square().mean().backward()
        return time.perf_counter() - start

    for gen in gens.values():
        step(gen)
    times = {name: [] for name in gens}
    ratios = []
    for i in range(rounds):
        order = list(gens) if i % 2 == 0 else list(reversed(gens))
        got = {name: step(gens[name]) for name in order}
        for name, value in got.items():
            times[name].append(value)
        ratios.append(got["nearest_conv"] / got["deconv"])
    return {"ratio": statistics.median(ratios), "nearest_conv": statistics.median(times["nearest_conv"]),
            "deconv": statistics.median(times["deconv"]), "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per measurement (default 5)")
    parser.add_argument("--steps", type=int, default=25, help="training iterations per round (default 25)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32, help="GANTask size for (1) (default 32, the recipe's)")
    parser.add_argument("--out", type=Path, default=Path("leaderboards/bench_training.md"))
    args = parser.parse_args(argv)
    for name in ("rounds", "steps", "batch_size"):
        if getattr(args, name) < 1 or (name == "steps" and args.steps < 5):
            parser.error(f"--{name.replace('_', '-')} is too small: {getattr(args, name)}")
    warnings.filterwarnings("ignore", module=NAMESPACE)
    import logging

    logging.getLogger(NAMESPACE).setLevel(logging.ERROR)

    lightning = bench_lightning(args.rounds, args.steps, args.batch_size, args.image_size)
    print(f"GANTask / plain loop: {lightning['ratio']:.3f}× ({lightning['lightning'] * 1e3:.1f} ms vs {lightning['plain'] * 1e3:.1f} ms)")
    upsampler = bench_upsampler(max(args.rounds, 5), args.batch_size)
    print(f"generator nearest_conv / deconv: {upsampler['ratio']:.3f}× ({upsampler['nearest_conv'] * 1e3:.1f} ms vs {upsampler['deconv'] * 1e3:.1f} ms)")

    def met(value: float, goal: float) -> str:
        return "yes" if value <= goal else "no"

    report = "\n".join([
        "# Training cost",
        "",
        "Generated by `python recipes/benchmarks/bench_training.py`; do not edit by hand.",
        "",
        "| measurement | value | goal | met |",
        "| --- | --- | --- | --- |",
        f"| GANTask iteration in `Trainer.fit` / plain PyTorch loop, {args.image_size}², batch {args.batch_size} | "
        f"{lightning['ratio']:.3f}× ({lightning['lightning'] * 1e3:.1f} ms / {lightning['plain'] * 1e3:.1f} ms) | "
        f"≤ {LIGHTNING_GOAL} | {met(lightning['ratio'], LIGHTNING_GOAL)} |",
        f"| DCGAN-64 generator fwd+bwd, all `nearest_conv` / all `deconv`, batch {args.batch_size} | "
        f"{upsampler['ratio']:.3f}× ({upsampler['nearest_conv'] * 1e3:.1f} ms / {upsampler['deconv'] * 1e3:.1f} ms) | "
        f"≤ {UPSAMPLER_GOAL} | {met(upsampler['ratio'], UPSAMPLER_GOAL)} |",
        "",
        f"- machine: {os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}, lightning-checkerboard {__version__}",
        f"- date: {dt.date.today().isoformat()}; medians of per-round ratios",
        f"- per-round ratios: Lightning {', '.join(f'{r:.3f}' for r in lightning['ratios'])}; "
        f"upsampler {', '.join(f'{r:.3f}' for r in upsampler['ratios'])}",
        "",
    ])
    atomic_write_text(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
