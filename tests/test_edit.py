"""Editing through the code: attribute vectors, the constrained edit's terms (stroke, judge, staying near z₀,
realism), and ``python -m src.edit`` end to end on tiny checkpoints (outputs and one-line errors)."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from test_invert import _known, bigan, run_module, tiny_checkpoint, write_pngs

from src.inversion.adapters import adapter_for
from src.inversion.editing import (AttributeConstraint, EditSettings, StrokeConstraint, attribute_vector,
                                   constrained_edit, shift, value_index)
from src.metrics.attribute_judge import AttributeJudge
from src.nets.attribute_classifier import AttributeClassifier
from src.utils.errors import ConfigError

SPEC = (("gender", ("female", "male")), ("eyeglasses", ("no", "yes")), ("hair_color", ("black", "red", "blond")))


pytestmark = pytest.mark.usefixtures("single_thread")


def test_attribute_vector_is_the_difference_of_the_two_groups_means():
    codes = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [2.0, 2.0], [4.0, 0.0]])
    attrs = torch.tensor([[0, 1, 0], [0, 1, 2], [1, 0, 1], [1, 0, 2], [0, 0, 0]])
    vector = attribute_vector(codes, attrs, column=1, value=1)  # with eyeglasses: rows 0, 1; without: 2, 3, 4
    assert torch.allclose(vector, torch.tensor([2.0, 1.0]) - torch.tensor([2.0, 2.0]))
    assert torch.allclose(attribute_vector(codes, attrs, 2, 2), torch.tensor([2.5, 2.0]) - torch.tensor([5 / 3, 4 / 3]))
    assert torch.equal(shift(codes[:2], vector, torch.tensor([1.0, -2.0])), codes[:2] + torch.tensor([[0.0, -1.0],
                                                                                                       [0.0, 2.0]]))
    with pytest.raises(ConfigError, match="all 5 labelled images lack it"):
        attribute_vector(codes, attrs, 2, 5)


def test_attribute_and_value_names_are_checked_with_the_known_ones_named():
    assert value_index(SPEC, "eyeglasses", None) == (1, 1) and value_index(SPEC, "hair_color", "blond") == (2, 2)
    with pytest.raises(ConfigError, match="attribute=glasses is not an attribute of this dataset; use one of gender"):
        value_index(SPEC, "glasses", None)
    with pytest.raises(ConfigError, match="hair_color has the values black, red, blond; pass target="):
        value_index(SPEC, "hair_color", None)
    with pytest.raises(ConfigError, match="target=green is not a value of hair_color; use one of black, red, blond"):
        value_index(SPEC, "hair_color", "green")


def test_stroke_error_counts_only_the_masked_pixels():
    mask = torch.zeros(4, 4)
    mask[:2, :2] = 1
    stroke = StrokeConstraint(mask, [0.5, -0.5, 0.0])
    images = torch.zeros(2, 3, 4, 4)
    images[0, :, :2, :2] = torch.tensor([0.5, -0.5, 0.0])[:, None, None]  # the colour under the mask …
    images[0, :, 2:, 2:] = 1.0  # … and anything outside it
    assert torch.allclose(stroke(images), torch.tensor([0.0, (0.25 + 0.25 + 0.0) / 3]))
    with pytest.raises(ConfigError, match="The stroke mask is empty"):
        StrokeConstraint(torch.zeros(4, 4), [0.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match="Give one value per channel"):
        stroke(torch.zeros(1, 1, 4, 4))


def _stroke_on(adapter):
    side = adapter.image_shape[-1]
    mask = torch.zeros(side, side)
    mask[side // 4: side // 2, side // 4: 3 * side // 4] = 1
    return StrokeConstraint(mask, [0.9] * adapter.image_shape[0])


def test_a_constrained_edit_paints_the_stroke_stays_near_z0_and_trains_nothing():
    model = bigan()
    adapter = adapter_for(model)
    z0, before = _known(adapter, n=6)
    stroke = _stroke_on(adapter)
    state = {name: p.clone() for name, p in model.state_dict().items()}
    settings = EditSettings(steps=150, lr=0.05, stay_weight=1e-3, realism_weight=0.05)
    edited = constrained_edit(adapter, z0, [stroke], settings)
    with torch.no_grad():
        after = adapter.decode(edited)
    assert stroke(after).mean() < 0.5 * stroke(before).mean()
    # λ_s holds the code back: a heavy weight moves it far less (and paints less).
    held = constrained_edit(adapter, z0, [stroke], EditSettings(steps=150, lr=0.05, stay_weight=100.0))
    assert (held - z0).norm(dim=1).mean() < 0.5 * (edited - z0).norm(dim=1).mean()
    assert all(torch.equal(state[name], value) for name, value in model.state_dict().items())
    assert not any(p.grad is not None for p in model.parameters())
    with pytest.raises(ConfigError, match="A constrained edit needs a constraint"):
        constrained_edit(adapter, z0, [], settings)


def test_the_realism_term_is_ds_loss_and_moves_the_edit():
    adapter = adapter_for(bigan())
    z0, _ = _known(adapter, n=4)
    stroke = _stroke_on(adapter)
    plain = constrained_edit(adapter, z0, [stroke], EditSettings(steps=40, realism_weight=0.0))
    real = constrained_edit(adapter, z0, [stroke], EditSettings(steps=40, realism_weight=5.0))
    assert not torch.allclose(plain, real)
    with torch.no_grad():
        score = lambda z: adapter.realism(adapter.decode(z), z).mean()  # noqa: E731
        assert score(real) < score(plain)  # the realism weight lowers −log D(G(z), z)


def test_the_attribute_constraint_is_the_judges_cross_entropy_with_gradients_to_the_images():
    torch.manual_seed(0)
    judge = AttributeJudge(AttributeClassifier([2, 2, 3], in_channels=3, base_width=4, max_width=8), SPEC, (3, 16, 16))
    constraint = AttributeConstraint(judge, column=2, value=1)
    images = (torch.rand(3, 3, 16, 16) * 2 - 1).requires_grad_(True)
    loss = constraint(images)
    expected = torch.nn.functional.cross_entropy(judge.net(images)[2], torch.ones(3, dtype=torch.long),
                                                 reduction="none")
    assert torch.allclose(loss, expected)
    loss.sum().backward()
    assert images.grad.abs().sum() > 0 and not any(p.grad is not None for p in judge.net.parameters())
    per_item = AttributeConstraint(judge, column=2, value=torch.tensor([0, 2, 1]))(images)
    assert torch.allclose(per_item, torch.nn.functional.cross_entropy(judge.net(images)[2], torch.tensor([0, 2, 1]),
                                                                      reduction="none"))
    # G's images at another size (ProGAN mid-growth) are resized to the judge's.
    assert constraint(torch.zeros(2, 3, 8, 8)).shape == (2,) and constraint.satisfied(torch.zeros(2, 3, 8, 8)).shape == (2,)


# ----- the entry point ---------------------------------------------------------------------------------------------

#: A VAE-GAN on 32-px faces (the recipe's size) with tiny nets and a few labelled faces.
TINY_VAEGAN = ["model=vaegan", "data=faces", "data.train_size=96", "data.val_size=16", "data.test_size=4",
               "model.latent_dim=8", "model.encoder.widths=[4,8,8]", "model.encoder.fc_dim=16",
               "model.decoder.widths=[8,8,4]", "model.discriminator.widths=[4,8,8,8]", "model.discriminator.fc_dim=16"]
FACES = {"name": "faces", "kind": "image", "image_shape": [3, 32, 32], "num_classes": None}


@pytest.fixture
def faces_checkpoint(hydra_config, tmp_path, cache_dir):
    return tiny_checkpoint(hydra_config, tmp_path, [*TINY_VAEGAN, f"paths.cache_dir={cache_dir}"], FACES)


def _inputs(model, folder, names=("a.png", "sub/b.png")):
    adapter = adapter_for(model)
    _, images = _known(adapter, n=len(names))
    write_pngs(images, folder, names)
    return list(names)


def test_edit_cli_attribute_vector_writes_edits_and_the_shifted_codes(faces_checkpoint, tmp_path):
    ckpt, model = faces_checkpoint
    names = _inputs(model, tmp_path / "in")
    out = tmp_path / "out"
    done = run_module("src.edit", f"ckpt_path={ckpt}", f"images={tmp_path / 'in'}", "method=encoder",
                      "attribute=eyeglasses", "strength=2.0", "vector_images=64", "per_row=2", f"output_dir={out}",
                      f"hydra.run.dir={tmp_path / 'log'}")
    assert done.returncode == 0, done.stderr
    saved = torch.load(out / "codes.pt", weights_only=True)
    assert saved["mode"] == "vector" and saved["vector"].shape == (8,) and saved["vector"].abs().sum() > 0
    assert torch.allclose(saved["edited"], saved["codes"] + 2.0 * saved["vector"], atol=1e-6)
    written = sorted(p.relative_to(out / "edited").as_posix() for p in (out / "edited").rglob("*.png"))
    assert written == sorted(names)
    with Image.open(out / "before_after.png") as grid:  # one row of 2 (input | reconstruction | edit) triples
        assert grid.size == (6 * 34 + 2, 34 + 2)


def test_edit_cli_stroke_paints_the_colour_under_the_mask(faces_checkpoint, tmp_path):
    ckpt, model = faces_checkpoint
    _inputs(model, tmp_path / "in")
    mask = torch.zeros(64, 64, dtype=torch.uint8)  # any size: resized to G's 32 px
    mask[16:32, 16:48] = 255
    Image.fromarray(mask.numpy()).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    done = run_module("src.edit", f"ckpt_path={ckpt}", f"images={tmp_path / 'in'}", "method=encoder",
                      f"stroke={tmp_path / 'mask.png'}", "color=[250,20,20]", "edit.steps=60", "edit.stay_weight=1e-3", f"output_dir={out}",
                      f"hydra.run.dir={tmp_path / 'log'}")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("edited 2 images (constrained"))
    before, after = (float(x) for x in line.split("stroke error ")[1].split(")")[0].split(" → "))
    # An untrained 8-d decoder barely reaches red: the edit's wiring is what this checks (how well a stroke is
    # painted: test_a_constrained_edit_paints_the_stroke_stays_near_z0_and_trains_nothing).
    assert after < 0.98 * before, line


@pytest.mark.parametrize("case, message", [
    ("unknown_attribute", "attribute=glasses is not an attribute of this dataset; use one of"),
    ("missing_stroke", "nope.png does not exist; pass a mask image"),
    ("bad_color", "color=[1, 2] is not a stroke colour; give 3 values from 0 to 255"),
    ("nothing", "Nothing to edit: pass attribute=<name>"),
    ("bad_mode", "mode=paint is not an edit mode; use one of auto, vector, constrained"),
    ("bad_vector_method", "vector_method=nearest is not an inversion method; use one of encoder, optimize, hybrid"),
])
def test_edit_cli_bad_input_is_one_line_without_traceback(case, message, faces_checkpoint, tmp_path):
    ckpt, model = faces_checkpoint
    _inputs(model, tmp_path / "in", ["x.png"])
    Image.fromarray(torch.full((8, 8), 255, dtype=torch.uint8).numpy()).save(tmp_path / "mask.png")
    args = {"unknown_attribute": ["attribute=glasses"], "missing_stroke": [f"stroke={tmp_path / 'nope.png'}",
                                                                           "color=[1,2,3]"],
            "bad_color": [f"stroke={tmp_path / 'mask.png'}", "color=[1,2]"], "nothing": [], "bad_mode": ["mode=paint"],
            "bad_vector_method": ["attribute=eyeglasses", "vector_method=nearest"]}
    done = run_module("src.edit", f"ckpt_path={ckpt}", f"images={tmp_path / 'in'}", "method=encoder", *args[case],
                      f"hydra.run.dir={tmp_path / 'log'}", f"output_dir={tmp_path / 'out'}")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr


def test_editing_by_attribute_needs_a_labelled_dataset(hydra_config, tmp_path):
    ckpt, model = tiny_checkpoint(hydra_config, tmp_path)  # a BiGAN on digits: no attributes
    _inputs(model, tmp_path / "in", ["x.png"])
    done = run_module("src.edit", f"ckpt_path={ckpt}", f"images={tmp_path / 'in'}", "method=encoder",
                      "attribute=eyeglasses", f"hydra.run.dir={tmp_path / 'log'}", f"output_dir={tmp_path / 'out'}")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "error: Editing by attribute needs labelled images: data=digits has no attribute labels" in done.stderr


def test_edit_config_composes_on_the_inversion_settings_and_its_own_are_checked(hydra_config, tmp_path):
    from src.utils.config_check import check_config

    cfg = hydra_config(["ckpt_path=some.ckpt", "images=in", f"output_dir={tmp_path}"], config_name="edit")
    check_config(cfg)
    assert (cfg.mode, cfg.method, cfg.vector_method, cfg.strength) == ("auto", "hybrid", "encoder", 1.5)
    assert cfg.optimize.steps == 300 and cfg.edit.stay_weight == 1.0  # inversion's settings, then the edit's
    bad = hydra_config(["ckpt_path=some.ckpt", "images=in", f"output_dir={tmp_path}", "edit.steps=0"],
                       config_name="edit")
    with pytest.raises(ConfigError, match=r"edit.steps=0"):
        check_config(bad)
