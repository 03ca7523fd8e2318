"""Benchmark: editing held-out faces through the code of a trained face generator (by default the VAE-GAN of
experiments/vaegan_faces.py, its own encoder giving z₀), with src.inversion.editing, read by the attribute judge
(trained on real faces only, cached).

- Attribute vectors, for every binary attribute: v = mean E(x) of --vector-images training faces with it − of those
  without; each test face is moved towards the other value, G(z₀ ± α·v) (+ if it lacks the attribute, − if it has
  it). α is chosen per attribute on the validation faces from --strengths (the smallest whose flip rate reaches
  0.80, else the one flipping most), then applied to the test faces. Recorded: the flip rate of the target, the
  share of the other attributes kept (against the faces' labels, and against the judge's reading of the
  reconstruction G(z₀), i.e. what the edit itself changed), FID of the edited faces against the real test faces.
- Constrained edits (Zhu et al. 2016): z* = argmin λ_u·U + λ_s·‖z − z₀‖² + λ_d·(−log D) from z₀, with U
  (a) the judge's cross-entropy to the other value of each binary attribute: satisfied when an independent reader
      (a second judge trained the same way from another seed, so not the one the edit was optimised against) reads
      the target; kept as above;
  (b) a red stroke across the hair (rows 3–8 of 32, the middle half): satisfied when the masked RMS error to the
      colour is ≤ --stroke-tolerance (on [-1, 1]); kept over the attributes outside the stroke (not hair colour
      or hat); FID of the edited set.
Target (attribute vectors): flip ≥ 0.80 with kept ≥ 0.90 for most attributes; every attribute is reported.

    python experiments/editing_faces.py [--ckpt logs/benchmarks/vaegan_faces/vaegan/checkpoints/last.ckpt] [--n 300]
    python experiments/editing_faces.py --ckpt logs/benchmarks/vaegan_faces/vae/checkpoints/last.ckpt --name editing_faces_vae
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from face_codes import VAEGAN_CKPT, judge_record, load_face_generator
from record import RESULTS, write_result
from torchvision.utils import save_image

from src.inversion.editing import (AttributeConstraint, EditSettings, StrokeConstraint, attribute_vector,  # noqa: E402
                                   constrained_edit, shift)
from src.metrics.attribute_judge import attribute_accuracy, flip_rate, kept_share  # noqa: E402

NAME = "editing_faces"
STROKE_COLOR = (200, 30, 30)


def encode(faces, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([faces.adapter.encode(chunk) for chunk in images.split(250)])


def binary_columns(spec) -> dict[str, int]:
    return {name: k for k, (name, values) in enumerate(spec) if len(values) == 2}


def toward_other_value(labels: torch.Tensor, column: int) -> torch.Tensor:
    """+1 for faces without the attribute (value 0), −1 for those with it: the sign that flips each face."""
    return 1.0 - 2.0 * labels[:, column].float()


def vector_edits(faces, args, codes_train, labels_train, split_codes, split_labels, column) -> tuple[float, torch.Tensor]:
    """The α chosen on the validation faces and the test faces' edited codes."""
    vector = attribute_vector(codes_train, labels_train, column, 1)
    (val_codes, test_codes), (val_labels, test_labels) = split_codes, split_labels
    name = faces.judge.names[column]
    flips = {}
    for alpha in args.strengths:
        edited = faces.decode(shift(val_codes, vector, alpha * toward_other_value(val_labels, column)))
        flips[alpha] = flip_rate(faces.judge.predict(edited), val_labels, name, faces.judge.names)
    reaching = [alpha for alpha in args.strengths if flips[alpha] >= 0.80]
    alpha = min(reaching) if reaching else max(flips, key=flips.get)
    return alpha, shift(test_codes, vector, alpha * toward_other_value(test_labels, column))


def edit_figures(judge, edited: torch.Tensor, labels, recon_pred, exclude: list[str], target: str | None):
    pred = judge.predict(edited)
    figures = {}
    if target is not None:
        figures["flip"] = flip_rate(pred, labels, target, judge.names)
    mask = torch.ones(labels.shape, dtype=torch.bool)
    for name in exclude:
        mask[:, judge.names.index(name)] = False
    kept = lambda before: attribute_accuracy(pred, before, judge.names, mask)["mean"]  # noqa: E731
    figures["kept"], figures["kept_vs_reconstruction"] = kept(labels), kept(recon_pred)
    if target is not None and not exclude[1:]:
        each = kept_share(pred, labels, target, judge.names)
        figures |= {f"kept/{name}": value for name, value in each.items() if name != "mean"}
    return figures


def stroke_constraint(side: int) -> StrokeConstraint:
    mask = torch.zeros(side, side)
    mask[3 * side // 32: 9 * side // 32, side // 4: 3 * side // 4] = 1
    return StrokeConstraint(mask, [c / 127.5 - 1 for c in STROKE_COLOR])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, default=VAEGAN_CKPT)
    parser.add_argument("--n", type=int, default=300, help="test faces edited (and validation faces choosing α)")
    parser.add_argument("--vector-images", type=int, default=2000)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--steps", type=int, default=200, help="Adam steps of a constrained edit")
    parser.add_argument("--stroke-tolerance", type=float, default=0.3)
    parser.add_argument("--name", default=NAME, help="result name (JSON file and grids folder), e.g. for another --ckpt")
    args = parser.parse_args()
    start = time.perf_counter()
    faces = load_face_generator(args.ckpt)
    judge, reader = faces.judge, faces.judge_with_seed(1)
    train_images, train_labels = faces.faces("train", args.vector_images)
    val_images, val_labels = faces.faces("val", args.n)
    test_images, test_labels = faces.faces("test", args.n)
    codes_train, val_codes, test_codes = encode(faces, train_images), encode(faces, val_images), encode(faces, test_images)
    reconstructions = faces.decode(test_codes)
    recon_pred, recon_read = judge.predict(reconstructions), reader.predict(reconstructions)
    real_features = faces.features(test_images)
    figures: dict = {"n": len(test_images), "vector_images": len(train_images), **judge_record(judge),
                     **judge_record(reader, "reader_val_"),
                     "reconstruction_kept": float((recon_pred == test_labels).float().mean()),
                     **{f"reconstruction_{k}": v for k, v in faces.fid(reconstructions, real_features).items()}}
    grids = RESULTS / args.name
    grids.mkdir(parents=True, exist_ok=True)
    settings = EditSettings(steps=args.steps)
    meeting = 0
    for name, column in binary_columns(judge.spec).items():
        alpha, codes = vector_edits(faces, args, codes_train, train_labels, (val_codes, test_codes),
                                    (val_labels, test_labels), column)
        edited = faces.decode(codes)
        vector = edit_figures(judge, edited, test_labels, recon_pred, [name], name)
        vector |= {"strength": alpha, **faces.fid(edited, real_features)}
        meeting += vector["flip"] >= 0.80 and vector["kept"] >= 0.90
        figures |= {f"vector_{name}_{key}": value for key, value in vector.items()}
        save_image(torch.stack([test_images[:8], reconstructions[:8], edited[:8]], 1).flatten(0, 1).cpu(),
                   grids / f"vector_{name}.png", nrow=6, normalize=True, value_range=(-1, 1))
        target = (1 - test_labels[:, column]).long()
        started = time.perf_counter()
        constrained = torch.cat([constrained_edit(faces.adapter, chunk, [AttributeConstraint(judge, column, value)],
                                                  settings)
                                 for chunk, value in zip(test_codes.split(100), target.split(100))])
        seconds = time.perf_counter() - started
        edited = faces.decode(constrained)
        read = edit_figures(reader, edited, test_labels, recon_read, [name], name)
        figures |= {f"constrained_{name}_satisfied": read.pop("flip"),
                    f"constrained_{name}_satisfied_by_the_optimised_judge":
                        float((judge.predict(edited)[:, column] == target).float().mean()),
                    **{f"constrained_{name}_{key}": value for key, value in read.items() if "/" not in key},
                    f"constrained_{name}_fid": faces.fid(edited, real_features)["fid"],
                    f"constrained_{name}_seconds_per_image": seconds / len(test_codes)}
    stroke = stroke_constraint(faces.adapter.image_shape[-1])
    started = time.perf_counter()
    painted = torch.cat([constrained_edit(faces.adapter, chunk, [stroke], settings) for chunk in test_codes.split(100)])
    seconds = time.perf_counter() - started
    edited = faces.decode(painted)
    rms = lambda images: stroke(images).sqrt()  # noqa: E731
    figures |= {"stroke_satisfied": float((rms(edited) <= args.stroke_tolerance).float().mean()),
                "stroke_satisfied_before": float((rms(reconstructions) <= args.stroke_tolerance).float().mean()),
                "stroke_rms_before": float(rms(reconstructions).mean()), "stroke_rms_after": float(rms(edited).mean()),
                **{f"stroke_{k}": v for k, v in edit_figures(judge, edited, test_labels, recon_pred,
                                                            ["hair_color", "hat"], None).items()},
                "stroke_fid": faces.fid(edited, real_features)["fid"], "stroke_seconds_per_image": seconds / len(test_codes)}
    save_image(torch.stack([test_images[:8], reconstructions[:8], edited[:8]], 1).flatten(0, 1).cpu(),
               grids / "stroke.png", nrow=6, normalize=True, value_range=(-1, 1))
    n_binary = len(binary_columns(judge.spec))
    figures |= {"vector_attributes_meeting_target": meeting, "binary_attributes": n_binary,
                "target_met": meeting > n_binary / 2, "checkpoint": str(args.ckpt),
                "target": "attribute vectors: flip >= 0.80 with kept >= 0.90 for most binary attributes",
                "grids": sorted(str(p.relative_to(RESULTS.parent.parent)) for p in grids.glob("*.png"))}
    print(write_result(args.name, figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
