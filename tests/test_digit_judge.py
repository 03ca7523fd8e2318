"""The digit judge of the BiGAN benchmark: trained on real digits only, it reads held-out real digits right, and
class_kept counts exactly the images it reads as their labels."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from src.data.digits import DigitsDataModule
from src.metrics.fid import images_to_uint8
from src.metrics.digit_judge import DIGIT_SETTINGS, DIGIT_SPEC, LabelsAsAttrs, class_kept, train_digit_judge


@pytest.fixture(scope="module")
def judged():
    data = DigitsDataModule(image_size=16, val_size=297)
    settings = dataclasses.replace(DIGIT_SETTINGS, epochs=10, max_width=32)
    judge = train_digit_judge(data.split("train"), data.split("val"), settings, device="cpu")
    val = data.split("val")
    images = torch.stack([val[i]["image"] for i in range(len(val))])
    labels = torch.stack([val[i]["label"] for i in range(len(val))])
    return judge, images, labels


def test_labels_become_one_attribute():
    item = LabelsAsAttrs(DigitsDataModule(image_size=16, val_size=10).split("val"))[0]
    assert item["attrs"].shape == (1,) and item["attrs"].dtype == torch.int64 and 0 <= item["attrs"][0] <= 9


def test_judge_reads_held_out_real_digits(judged):
    judge, images, labels = judged
    assert judge.spec == DIGIT_SPEC
    assert class_kept(judge, images, labels) >= 0.9
    # The record scores the held-out digits as the judge's training loads them, through 8-bit pixels; the
    # embedded digits are resized floats, so the same images at 8 bits give exactly the recorded share (the float
    # originals may read one borderline digit differently on another CPU).
    as_loaded = images_to_uint8(images).float() / 127.5 - 1.0
    assert class_kept(judge, as_loaded, labels) == pytest.approx(judge.record["val_accuracy"]["digit"])


def test_class_kept_counts_the_images_read_as_their_label(judged):
    judge, images, labels = judged
    predicted = judge.predict(images.expand(-1, 3, -1, -1))[:, 0]
    wrong = (predicted + 1) % 10
    assert class_kept(judge, images, predicted) == 1.0 and class_kept(judge, images, wrong) == 0.0
    half = torch.where(torch.arange(len(labels)) % 2 == 0, predicted, wrong)
    assert class_kept(judge, images, half) == pytest.approx((len(labels) + 1) // 2 / len(labels))
    # Noise is not read as the digits' classes.
    assert class_kept(judge, torch.rand_like(images) * 2 - 1, labels) < 0.5
