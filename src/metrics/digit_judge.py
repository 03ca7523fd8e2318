"""A digit classifier trained on real digits only, the judge of "is the class kept?" for the BiGAN benchmark: the
share of held-out digits x whose reconstruction G(E(x)) the judge reads as x's own class.

It is the attribute judge (:mod:`src.metrics.attribute_judge`) with one 10-valued attribute, ``digit``: the same
classifier, training loop and held-out scoring, fed the digits' labels as ``"attrs"``. No horizontal flips (a
mirrored 2 is no 2), small shifts only.
"""
from __future__ import annotations

from torch import Tensor
from torch.utils.data import Dataset

from src.metrics.attribute_judge import AttributeJudge, JudgeSettings, train_judge

DIGIT_SPEC = (("digit", tuple("0123456789")),)
#: Fits the 1,500 embedded training digits at 32 px in well under a minute on 2 CPU cores.
DIGIT_SETTINGS = JudgeSettings(epochs=12, batch_size=64, lr=3e-3, max_shift=0.0625, flip=False, base_width=16,
                               max_width=64)


class LabelsAsAttrs(Dataset):
    """Items ``{"image", "label"}`` as the judge's ``{"image", "attrs"}`` (attrs: the label as a 1-vector)."""

    def __init__(self, items: Dataset):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self.items[index]
        return {"image": item["image"], "attrs": item["label"].reshape(1)}


def train_digit_judge(train_set: Dataset, val_set: Dataset, settings: JudgeSettings = DIGIT_SETTINGS,
                      device=None) -> AttributeJudge:
    """A digit judge fitted on ``train_set`` (labelled digits), scored on ``val_set`` (``judge.record``)."""
    return train_judge(LabelsAsAttrs(train_set), LabelsAsAttrs(val_set), DIGIT_SPEC, settings, device)


def class_kept(judge: AttributeJudge, images: Tensor, labels: Tensor) -> float:
    """Share of ``images`` (N×C×S×S in [-1, 1]) the judge reads as their ``labels`` (N int64). Gray images are
    repeated to the judge's channels (the judge's training loads images as RGB through ``images_to_uint8``)."""
    if images.shape[1] == 1:
        images = images.expand(-1, judge.image_shape[0], -1, -1)
    return (judge.predict(images)[:, 0].cpu() == labels.cpu()).float().mean().item()
