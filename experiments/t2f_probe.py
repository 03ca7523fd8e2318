"""Diagnostic: which attributes does a trained T2F's discriminator read from the text? (no training; about a minute)

T2F's generator can only learn to draw an attribute from its caption if the matching-aware D scores a real face
lower under a caption that contradicts it on that attribute. For --n held-out faces of the test split (each with its
own caption t_i) and --others other test captions t_j each, this measures D's margin
    m_ij = D(x_i, φ(t_i)) − D(x_i, φ(t_j))
and fits m_ij ≈ b + Σ_a w_a·[t_j names attribute a with a value x_i does not have] by least squares: w_a is what D
takes off, on average, for a caption that gets a wrong, and b what it takes off for a caption that is merely not
the face's own. Both are also given relative to the spread (standard deviation) of D's scores on the real faces
under their own captions. A w_a near 0 means D does not read attribute a from the text, so the generator gets no
signal to draw it; text_acc/<a> of experiments/t2f_faces.py then stays at the base rate.

D reads φ from the text encoder as trained (not the EMA copy), at the run's last phase.

    python experiments/t2f_probe.py --ckpt logs/benchmarks/t2f_faces/seed0/checkpoints/last.ckpt [--name t2f_probe]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from hydra.utils import instantiate

from record import REPO, write_result

sys.path.insert(0, str(REPO))
from src.data.faces.attributes import ATTRIBUTES, NAMES  # noqa: E402
from src.data.faces.captions import named_attributes  # noqa: E402
from src.nets.progan import real_at  # noqa: E402
from src.sample import load_model  # noqa: E402


def conflicts(caption: str, attrs: torch.Tensor) -> list[float]:
    """One 0/1 per attribute: the caption names it with a value the face (its attribute indices) does not have."""
    named = named_attributes(caption)
    return [float(a.name in named and a.values.index(named[a.name]) != int(attrs[k]))
            for k, a in enumerate(ATTRIBUTES)]


@torch.no_grad()
def probe(ckpt: str, n: int, others: int, seed: int) -> dict:
    model, config = load_model(ckpt)
    datamodule = instantiate(config.data)
    items = datamodule.eval_subset("test_captions", n)
    items = [items[i] for i in range(len(items))]
    phase = model.phase
    images = real_at(torch.stack([item["image"] for item in items]), phase.resolution, phase.alpha)
    tokens = torch.stack([item["tokens"] for item in items])
    lengths = torch.stack([item["length"] for item in items])
    phi = torch.cat([model.generator.text_encoder(t, l) for t, l in zip(tokens.split(100), lengths.split(100))])

    def scores(text: torch.Tensor) -> torch.Tensor:
        return torch.cat([model.discriminator(x, phase.stage, phase.alpha, p)
                          for x, p in zip(images.split(100), text.split(100))])

    own = scores(phi)
    rng = np.random.default_rng(seed)
    margins, rows = [], []
    for _ in range(others):
        other = torch.from_numpy((np.arange(len(items)) + rng.integers(1, len(items), len(items))) % len(items))
        margins.append(own - scores(phi[other]))
        rows += [conflicts(items[j]["caption"], items[i]["attrs"]) for i, j in enumerate(other.tolist())]
    margin = torch.cat(margins).double().numpy()
    design = np.column_stack([np.ones(len(rows)), np.array(rows)])
    weights, *_ = np.linalg.lstsq(design, margin, rcond=None)
    spread = own.std().item()
    counts = design[:, 1:].sum(0)
    figures = {"n_faces": len(items), "pairs": len(margin), "resolution": phase.resolution,
               "d_own_mean": own.mean().item(), "d_own_std": spread, "margin_mean": float(margin.mean()),
               "margin_intercept": float(weights[0]), "margin_intercept_rel": float(weights[0]) / spread}
    for k, name in enumerate(NAMES):
        figures[f"penalty/{name}"] = float(weights[k + 1]) if counts[k] else None
        figures[f"penalty_rel/{name}"] = float(weights[k + 1]) / spread if counts[k] else None
        figures[f"conflicts/{name}"] = int(counts[k])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default=str(REPO / "logs/benchmarks/t2f_faces/seed0/checkpoints/last.ckpt"))
    parser.add_argument("--n", type=int, default=1000, help="held-out faces")
    parser.add_argument("--others", type=int, default=8, help="other captions per face")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="t2f_probe")
    args = parser.parse_args()
    start = time.perf_counter()
    figures = {"ckpt": args.ckpt, **probe(args.ckpt, args.n, args.others, args.seed)}
    print(write_result(args.name, figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
