"""FID/KID against independent computations, under DDP, end to end against torch-fidelity; feature cache; clustering."""
import json
import socket
import time

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch_fidelity
import torchmetrics
from torch import nn
from torch.utils.data import Dataset

from src.metrics.clustering import cluster_accuracy
from src.metrics.fid import InceptionMetrics, cached_features, images_to_uint8, weights_identity
from src.metrics.inception import CONVERTER_VERSION, FID_PREPROCESSING

# Small feature vectors keep the d×d linear algebra cheap; the code path is the one 2048-d features take.
DIM = 64


def _features(n: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """Non-negative N×DIM features, like Inception's pooled ReLU activations."""
    return torch.rand(n, DIM, generator=torch.Generator().manual_seed(seed)) * scale + shift


def _metrics(**kwargs) -> InceptionMetrics:
    return InceptionMetrics(inception=nn.Identity(), num_features=DIM, **kwargs)


def _reference_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance ||mu_r - mu_f||² + Tr(S_r + S_f - 2 (S_r S_f)^½) with scipy's matrix square root."""
    mu_r, mu_f = real.mean(0), fake.mean(0)
    s_r, s_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(s_r @ s_f).real
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(s_r + s_f - 2 * root))


def _reference_kid(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD² with the kernel k(x, y) = (x·y / d + 1)³ on equally many real and fake samples."""
    m, d = real.shape

    def kernel(a, b):
        return (a @ b.T / d + 1) ** 3

    k_rr, k_ff = kernel(real, real), kernel(fake, fake)
    within = (k_rr.sum() - np.trace(k_rr) + k_ff.sum() - np.trace(k_ff)) / (m * (m - 1))
    return float(within - 2 * kernel(real, fake).mean())


def test_images_to_uint8_maps_range_and_repeats_gray():
    gray = torch.tensor([-1.0, 0.0, 1.0, 1.5]).reshape(1, 1, 2, 2)
    pixels = images_to_uint8(gray)
    assert pixels.dtype == torch.uint8 and pixels.shape == (1, 3, 2, 2)
    assert pixels[0, :, 0, 0].tolist() == [0, 0, 0]
    assert pixels[0, 2].flatten().tolist() == [0, 128, 255, 255]
    with pytest.raises(ValueError, match="C = 1 or 3"):
        images_to_uint8(torch.zeros(1, 2, 4, 4))


def test_fid_matches_scipy_frechet_distance():
    real, fake = _features(300, seed=0), _features(250, seed=1, scale=1.2, shift=0.1)
    metrics = _metrics(kid_subsets=2, kid_subset_size=50)
    metrics.update(real[:120], real=True)
    metrics.update(real[120:], real=True)
    metrics.update(fake, real=False)
    expected = _reference_fid(real.double().numpy(), fake.double().numpy())
    assert metrics.compute()["fid"] == pytest.approx(expected, rel=1e-6)


def test_kid_with_full_subsets_is_unbiased_mmd():
    real, fake = _features(20, seed=2), _features(20, seed=3, scale=1.1, shift=0.05)
    metrics = _metrics(kid_subsets=3, kid_subset_size=20)
    metrics.update(real, real=True)
    metrics.update(fake, real=False)
    result = metrics.compute()
    assert result["kid"] == pytest.approx(_reference_kid(real.double().numpy(), fake.double().numpy()), rel=1e-5)
    assert result["kid_std"] == pytest.approx(0.0, abs=1e-7)  # every subset holds all samples


def test_kid_subset_size_is_clipped_to_the_samples_held():
    real, fake = _features(12, seed=4), _features(12, seed=5, shift=0.2)
    metrics = _metrics(kid_subsets=2, kid_subset_size=1000)
    metrics.update(real, real=True)
    metrics.update(fake, real=False)
    with pytest.warns(UserWarning, match="KID subset_size 1000 is more than the 12 samples"):
        kid = metrics.compute()["kid"]
    assert kid == pytest.approx(_reference_kid(real.double().numpy(), fake.double().numpy()), rel=1e-5)
    assert metrics.kid.subset_size == 1000  # clipped for this compute only


def test_kid_subsets_are_seeded_and_leave_global_rng_alone():
    results = []
    for _ in range(2):
        metrics = _metrics(kid_subsets=5, kid_subset_size=6)
        metrics.update(_features(15, seed=6), real=True)
        metrics.update(_features(15, seed=7, shift=0.1), real=False)
        rng_before = torch.get_rng_state()
        results.append(metrics.compute())
        assert torch.equal(torch.get_rng_state(), rng_before)
    assert results[0] == results[1]
    assert results[0]["kid_std"] > 0  # the subsets really differ


def test_reset_forgets_real_and_fake():
    metrics = _metrics(kid_subsets=2, kid_subset_size=10)
    metrics.update(_features(10, seed=8), real=True)
    metrics.update(_features(10, seed=9), real=False)
    metrics.compute()
    metrics.reset()
    real, fake = _features(10, seed=10), _features(10, seed=11, shift=0.3)
    metrics.update(real, real=True)
    metrics.update(fake, real=False)
    fresh = _metrics(kid_subsets=2, kid_subset_size=10)
    fresh.update(real, real=True)
    fresh.update(fake, real=False)
    assert metrics.compute() == fresh.compute()


class _MeanColour(nn.Module):
    """Stand-in for Inception: checks the uint8 RGB input and returns the per-channel mean, padded to DIM."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.batch_sizes = []

    def forward(self, images):
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        self.batch_sizes.append(images.shape[0])
        means = images.float().mean(dim=(2, 3)) * self.scale
        return torch.cat([means, torch.zeros(images.shape[0], DIM - 3)], dim=1)


def test_extract_batches_images_and_inception_stays_out_of_state_dict():
    net = _MeanColour()
    metrics = InceptionMetrics(inception=net, num_features=DIM, batch_size=3)
    host = nn.Module()
    host.metrics = metrics
    features = metrics.extract(torch.ones(7, 1, 8, 8))
    assert features.dtype == torch.float32 and features.shape == (7, DIM)
    assert features[:, :3].eq(255).all()
    assert net.batch_sizes == [3, 3, 1]
    assert not any("scale" in key or "inception" in key for key in host.state_dict())
    assert list(host.parameters()) == []
    with pytest.raises(ValueError, match="extract"):
        metrics.update(torch.ones(2, 3, 8, 8), real=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Each rank's shards of the real and fake features; uneven on purpose, and rank 0 updates real in two calls.
_REAL_SHARDS = [[slice(0, 3), slice(3, 6)], [slice(6, 11)]]
_FAKE_SHARDS = [[slice(0, 4)], [slice(4, 9)]]
_CACHE_KEY = {"dataset": "digits", "split": "train", "n": 6, "weights": "w1"}


def _broadcast_from_rank0(obj):
    """What Lightning's `trainer.strategy.broadcast(obj, src=0)` does under DDP."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _sharded_metrics(rank: int, real, fake) -> dict:
    metrics = _metrics(kid_subsets=4, kid_subset_size=7)
    for shard in _REAL_SHARDS[rank]:
        metrics.update(real[shard], real=True)
    for shard in _FAKE_SHARDS[rank]:
        metrics.update(fake[shard], real=False)
    return metrics.compute()


def _cache_decisions(rank: int, world_size: int, cache_dirs: dict) -> dict:
    """Each rank has its own cache directory; `compute` is a collective, as the FID callback's sharded extraction."""
    results = {}
    for case, dirs in cache_dirs.items():
        calls = []

        def compute():
            calls.append(rank)
            shards = [torch.zeros(3, 2) for _ in range(world_size)]
            dist.all_gather(shards, torch.full((3, 2), 10.0 + rank))
            return torch.cat(shards)

        features = cached_features(dirs[rank], _CACHE_KEY, compute, broadcast=_broadcast_from_rank0,
                                   is_writer=rank == 0)
        results[case] = {"features": features.tolist(), "computed": bool(calls)}
    return results


def _distributed_worker(rank: int, world_size: int, port: int, real, fake, cache_dirs, out_dir) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        # One spawn for both checks: starting the two processes (imports) is most of the cost.
        results = {"metrics": _sharded_metrics(rank, real, fake),
                   "cache": _cache_decisions(rank, world_size, cache_dirs)}
        (out_dir / f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    """A real 2-process gloo run of `_distributed_worker` (about 20 s here, under load); what each rank returned.

    A hang (e.g. one rank in a collective the other never joins) fails after 180 s.
    """
    tmp = tmp_path_factory.mktemp("two_ranks")
    real, fake = _features(11, seed=12), _features(9, seed=13, scale=1.3)
    cached = torch.arange(12.0).reshape(6, 2)
    # The cache file is in one rank's directory only (ranks need not share a filesystem).
    dirs = {"rank0_has_file": [tmp / "a0", tmp / "a1"], "rank1_has_file": [tmp / "b0", tmp / "b1"]}
    cached_features(dirs["rank0_has_file"][0], _CACHE_KEY, lambda: cached)
    cached_features(dirs["rank1_has_file"][1], _CACHE_KEY, lambda: cached)

    context = mp.spawn(_distributed_worker, args=(2, _free_port(), real, fake, dirs, tmp), nprocs=2, join=False)
    deadline = time.monotonic() + 180
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the 2-process gloo run did not finish in 180 s")
    ranks = [json.loads((tmp / f"rank{rank}.json").read_text()) for rank in range(2)]
    return {"ranks": ranks, "real": real, "fake": fake, "cached": cached, "dirs": dirs}


def test_two_process_gloo_run_equals_single_process(two_ranks):
    single = _metrics(kid_subsets=4, kid_subset_size=7)
    single.update(two_ranks["real"], real=True)
    single.update(two_ranks["fake"], real=False)
    expected = single.compute()
    for rank in two_ranks["ranks"]:
        assert rank["metrics"] == pytest.approx(expected, rel=1e-6)


def test_two_ranks_follow_rank0s_cache_decision(two_ranks):
    """Rank 0 decides hit or miss for all. Before, each rank decided alone: where rank 0 hit and rank 1 missed,
    rank 1's collective in `compute` waited for one on rank 0. Here it met rank 0's collective of the next case
    and both ranks got wrong features (measured); with no later collective it waits until the fixture's timeout."""
    cached, dirs = two_ranks["cached"], two_ranks["dirs"]
    gathered = [[10.0, 10.0]] * 3 + [[11.0, 11.0]] * 3
    for rank in two_ranks["ranks"]:
        # A hit on rank 0: its file's features on every rank, nothing computed.
        assert rank["cache"]["rank0_has_file"] == {"features": cached.tolist(), "computed": False}
        # A miss on rank 0: every rank computes, despite rank 1's file.
        assert rank["cache"]["rank1_has_file"] == {"features": gathered, "computed": True}
    (written,) = (dirs["rank1_has_file"][0] / "fid_features").iterdir()
    assert torch.load(written, weights_only=True)["features"].tolist() == gathered
    (kept,) = (dirs["rank1_has_file"][1] / "fid_features").iterdir()  # rank 1 writes nothing
    assert torch.equal(torch.load(kept, weights_only=True)["features"], cached)


class _Uint8Images(Dataset):
    """uint8 N×3×H×W images, served one by one to torch-fidelity, which reads them as they are."""

    def __init__(self, pixels):
        self.pixels = pixels

    def __len__(self):
        return len(self.pixels)

    def __getitem__(self, index):
        return self.pixels[index]


def _digit_pixels(n: int) -> torch.Tensor:
    """The first n scikit-learn digits, uint8 N×1×32×32 (8×8 scaled from 0-16 to 0-255, 4× nearest upsampling)."""
    from sklearn.datasets import load_digits

    digits = torch.from_numpy(load_digits().images[:n]).float()
    pixels = torch.round(digits * 255 / 16).to(torch.uint8)
    return pixels.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2).unsqueeze(1)


def test_end_to_end_matches_torch_fidelity(cache_dir, tmp_path, monkeypatch):
    """Our whole FID path against torch-fidelity's own `calculate_metrics` on the same uint8 images, through the
    resize: 8 gray digits at 32 px (ours gets them as 1-channel floats in [-1, 1], so the uint8 conversion and
    the gray → RGB repeat are ours; torch-fidelity gets the RGB uint8 pixels) against 8 RGB images at 64 px.
    Both then resize to 299 inside the Inception. 25-35 s here on one thread under load (20 s of CPU: 32 Inception
    passes, two 2048×2048 eigen-decompositions).
    """
    import torch_fidelity

    from src.metrics.inception import resolve_inception_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # the converted weights, not a download
    weights = resolve_inception_weights(cache_dir=cache_dir)
    digits = _digit_pixels(8)
    colour = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(14))

    metrics = InceptionMetrics(weights_path=weights, kid_subsets=2, kid_subset_size=8)
    metrics.update(metrics.extract(digits.float() / 127.5 - 1), real=True)
    metrics.update(metrics.extract(colour.float() / 127.5 - 1), real=False)
    ours = metrics.compute()

    reference = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(digits.expand(-1, 3, -1, -1)), input2=_Uint8Images(colour), fid=True, kid=True,
        kid_subsets=2, kid_subset_size=8, feature_extractor_weights_path=str(weights),
        batch_size=8, cuda=False, cache=False, verbose=False, save_cpu_ram=True,
    )
    assert ours["fid"] == pytest.approx(reference["frechet_inception_distance"], rel=1e-6)  # measured 2e-8 (645)
    assert ours["kid"] == pytest.approx(reference["kernel_inception_distance_mean"], rel=1e-5)  # measured 2e-7
    # With antialias=True instead (torchmetrics' default) our FID was 634.8: the test sees the resize.


def test_feature_cache_computes_once_per_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return torch.full((4, 3), float(len(calls)))

    key = {"dataset": "digits", "fingerprint": "abc", "resolution": 32, "n": 4, "weights": "w1"}
    first = cached_features(tmp_path, key, compute)
    again = cached_features(tmp_path, dict(reversed(key.items())), compute)  # key order does not matter
    assert len(calls) == 1 and torch.equal(first, again)
    other = cached_features(tmp_path, {**key, "n": 5}, compute)
    assert len(calls) == 2 and other[0, 0] == 2
    files = sorted(p.name for p in (tmp_path / "fid_features").iterdir())
    assert len(files) == 2 and all(len(name) == len("0123456789abcdef.pt") for name in files)


def test_feature_cache_defaults_to_ganzoo_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "env_cache"))
    cached_features(None, {"dataset": "digits", "weights": "w1"}, lambda: torch.zeros(2, 3))
    assert len(list((tmp_path / "env_cache" / "fid_features").glob("*.pt"))) == 1


def test_feature_cache_key_holds_the_fid_path_and_needs_the_weights(tmp_path, monkeypatch):
    key = {"dataset": "digits", "split": "train", "n": 4, "weights": "w1"}
    cached_features(tmp_path, key, lambda: torch.zeros(4, 3))
    (stored,) = (tmp_path / "fid_features").iterdir()
    fid_path = torch.load(stored, weights_only=True)["key"]["fid_path"]
    assert fid_path["preprocessing"]["antialias"] is False and fid_path["preprocessing"]["resize"] == 299
    assert fid_path["torchmetrics"] == torchmetrics.__version__
    assert fid_path["torch-fidelity"] == torch_fidelity.__version__
    assert fid_path["converter"] == CONVERTER_VERSION
    # Another preprocessing (antialiased resize) gives other features: they must not come from this file.
    monkeypatch.setitem(FID_PREPROCESSING, "antialias", True)
    assert cached_features(tmp_path, key, lambda: torch.ones(4, 3)).eq(1).all()
    with pytest.raises(ValueError, match='"weights": weights_identity'):
        cached_features(tmp_path, {"dataset": "digits"}, lambda: torch.zeros(4, 3))


@pytest.mark.parametrize("damage", ["garbage", "empty", "first_half", "last_bytes_cut"])
def test_unreadable_cached_features_are_computed_again(tmp_path, damage):
    key = {"dataset": "digits", "weights": "w1"}
    cached_features(tmp_path, key, lambda: torch.zeros(512, 3))
    (stored,) = (tmp_path / "fid_features").iterdir()
    whole = stored.read_bytes()
    # e.g. a disk error or a copy cut short: rank 0 must not raise alone (see below). torch.load raises a different
    # exception for each: RuntimeError (not a zip, no central directory), EOFError (empty), OSError (cut in half).
    stored.write_bytes({"garbage": b"not a torch file", "empty": b"", "first_half": whole[: len(whole) // 2],
                        "last_bytes_cut": whole[:-10]}[damage])
    with pytest.warns(UserWarning, match="unreadable"):
        assert cached_features(tmp_path, key, lambda: torch.ones(4, 3)).eq(1).all()
    assert cached_features(tmp_path, key, lambda: torch.full((4, 3), 2.0)).eq(1).all()  # rewritten


def test_weights_identity_tracks_the_whole_content(tmp_path):
    a, same, other = tmp_path / "a.pth", tmp_path / "same.pth", tmp_path / "other.pth"
    mib = b"x" * (1 << 20)
    a.write_bytes(mib + b"last layer")
    same.write_bytes(mib + b"last layer")
    other.write_bytes(mib + b"last layeR")  # same size, same first MiB: a change past it must still show
    assert weights_identity(a) == weights_identity(same) != weights_identity(other)


def test_cluster_accuracy_is_one_for_permuted_labels():
    labels = torch.arange(10).repeat(5)
    permutation = torch.randperm(10, generator=torch.Generator().manual_seed(15))
    assert cluster_accuracy(permutation[labels], labels) == 1.0
    assert cluster_accuracy(permutation[labels].numpy() * 7 + 3, labels.numpy()) == 1.0  # any id values


def test_cluster_accuracy_hand_computed():
    # Clusters 0→label 1 (2 right), 1→label 0 (2 right); cluster 2 has no label left: 4/6.
    assert cluster_accuracy(np.array([0, 0, 1, 1, 2, 2]), np.array([1, 1, 0, 0, 0, 1])) == pytest.approx(4 / 6)
    # More labels than clusters: cluster 1→label 2, cluster 0→label 0 or 1: 2/4.
    assert cluster_accuracy(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 2])) == 0.5
    with pytest.raises(ValueError, match="equal length"):
        cluster_accuracy(np.array([0, 1]), np.array([0]))
