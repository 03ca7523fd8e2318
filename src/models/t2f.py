"""T2F (Karnewar 2018, akanimax/T2F): faces drawn from their descriptions, on ProGAN's growing (one implementation:
this subclasses :class:`src.models.progan.ProGAN` and adds the text through its hooks).

Our names → the paper's / reference code's:
- generator: :class:`src.nets.t2f.TextToImageGenerator`: TextEncoder (embedding 128 → 3-layer LSTM 256) → φ(t);
  ConditioningAugmentation → c = μ + σ·ε (178-d), concatenated with noise z ∼ N(0, I) (78-d) → ProGAN's G (256-d).
- discriminator: ProGAN's D with ``condition_dim`` = |φ(t)|: φ(t) is compressed by a dense layer, tiled over 4×4
  and concatenated after minibatch stddev in the final block.

Training, per slice (as ProGAN; WGAN-GP by default), with w = ``mismatch_weight`` (0 without ``matching_aware``):
    L_D = −E[D(x, φ)] + (1 − w)·E[D(G(c, z), φ)] + w·E[D(x, φ̃)] + λ·GP(x, G(c, z) | φ) + 0.001·E[D(x, φ)²]
    L_G = −E[D(G(c, z), φ)] + kl_weight·KL(N(μ, σ²) ‖ N(0, I))
- The matching-aware term E[D(x, φ̃)]: real images with other items' captions count as fakes; φ̃ is φ rolled by
  one place within the batch, so no image keeps its own caption (the reference permutes at random, which leaves
  some pairs matched); ``mismatch: nearest`` takes the caption nearest in φ instead (:meth:`mismatch_index`). The
  two kinds of fake share one weight, GAN-CLS's balance (Reed et al. 2016: ½ and ½, our default). The reference
  adds the mismatched term at full weight to the full fake term: D's loss then falls by one for every unit all its
  scores drop, which only the drift term stops, so every score settles near −1/(2·0.001) = −500 (measured:
  D(real) ≈ D(x, φ̃) ≈ −500 from the 8×8 stage on). ``mismatch_weight: 1`` with the fake term kept at 1 is not
  offered.
- Which loss trains the text encoder (``text_encoder_loss``):
  ``generator`` (the paper, the default): G's optimizer trains G, the text encoder and the conditioning layer on L_G
  through c and the KL; D sees φ detached (the reference also lets L_G reach the encoder through D's text input).
  ``discriminator`` (the faces recipe's): D's optimizer trains the encoder with D on L_D, so φ becomes what the
  matching-aware D needs to tell a caption that fits an image from one that does not; the conditioning layer reads
  φ detached, as StackGAN's reads its fixed pretrained embedding, and is trained by G's optimizer on L_G and the
  KL, which can then shrink μ but not φ.
  Measured on the faces: by the paper's route the encoder's output shrank to ~3e-4 under the KL, c became pure
  N(0, I) noise, D never told matched from mismatched captions (``train/text_margin`` ≈ 0) and the faces ignored
  the text (text accuracy = shuffled = base rate; experiments/results/t2f_faces_encoder_by_generator.json). Trained
  by L_D alone, φ collapsed onto one point instead (spread across captions 1% of its size); only with φ standardised
  over the batch (``generator.text_encoder.normalize``) did D's margin grow (to ~1 within 20k images at 16×16) and
  the text accuracy rise above the base rate (conf/recipe/t2f_faces.yaml has the four 16×16 runs).
- ``train/text_margin``: E[D(x, φ)] − E[D(x, φ̃)], how far D prefers each real image's own caption (0: D ignores
  the text).
- G's optimizer: one Adam for G and the conditioning layer (and, with ``generator``, the text encoder); the reference
  has three Adams with the same settings, which is the same update (Adam is per parameter).

Evaluation (by the EMA generator, which averages the text encoder and conditioning layer too):
- stream ``captions``: one fake per held-out caption of the test split (``test_captions``, templates never seen in
  training) against the test images at the current resolution.
- ``val/text_acc`` at every validation: the attribute judge (:func:`src.metrics.attribute_judge.load_judge`,
  trained once per dataset on real images and cached) reads the attributes off one fake per test caption (the
  stream's seeded draws: same seeds and chunks as the FID callback), compared with the attributes each caption
  names (:func:`src.data.faces.captions.named_attributes`); also ``val/text_acc/<attribute>``. Fakes below the
  judge's size are upsampled (nearest) to it. Only on data whose items carry attribute labels and whose captions
  name them (``data=faces``); skipped without error elsewhere (face2text and captions folders have no labels).
- Grid ``caption_rows``: a row per held-out caption (a fixed set), ``grid_columns`` noise draws per row, the caption
  printed under its row.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
from torch import Tensor

from src.callbacks.fid import FIDCallback, chunk_seed
from src.data.faces.captions import named_attributes
from src.data.text import Vocabulary
from src.metrics.attribute_judge import JudgeSettings, load_judge
from src.models.base import EvalStream, RealSet
from src.models.growing import Phase
from src.models.progan import ProGAN
from src.nets.losses import gaussian_kl
from src.nets.progan import upsample
from src.nets.t2f import TextToImageGenerator
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

STREAM = "captions"


class T2F(ProGAN):
    """Args (beyond :class:`ProGAN`'s; ``latent_dim`` is the conditioning's and the noise's together):
        vocabulary: the training captions' words (``${dataset.vocabulary}``), to tokenize captions at sampling.
        max_caption_length: tokens per caption (``${dataset.max_caption_length}``).
        kl_weight: of the conditioning augmentation's KL term (paper 1).
        matching_aware: add D's matching-aware term; mismatch_weight: its weight w (the fakes' is 1 − w).
        mismatch: which other caption each real image is shown with: ``roll`` (the previous item's) or ``nearest`` (the
            batch's caption nearest in φ: hard negatives; not in the paper).
        text_encoder_loss: ``discriminator`` (L_D trains the text encoder) or ``generator`` (L_G does: the paper).
        text_acc: log ``val/text_acc`` where the data allows it; text_acc_samples: test captions it reads at most.
        judge: settings of the attribute judge (:class:`JudgeSettings` fields; {}: the defaults); judge_cache_dir.
    """

    data_kinds = ("captioned",)
    generator: TextToImageGenerator

    @checked
    def __init__(
        self,
        generator: TextToImageGenerator,
        *args: Any,
        vocabulary: Sequence[str] = ("<pad>", "<unk>"),
        max_caption_length: Annotated[int, Meaning("tokens per caption", at_least=1)] = 32,
        kl_weight: Annotated[float, Meaning("the KL term's weight", at_least=0)] = 1.0,
        matching_aware: bool = True,
        mismatch_weight: Annotated[float, Meaning("the matching-aware term's weight", at_least=0)] = 0.5,
        mismatch: Annotated[Literal["roll", "nearest"], Meaning("how mismatched captions are chosen")] = "roll",
        text_encoder_loss: Annotated[Literal["discriminator", "generator"],
                                     Meaning("the loss that trains the text encoder")] = "generator",
        text_acc: bool = True,
        text_acc_samples: Annotated[int, Meaning("test captions val/text_acc reads", at_least=1)] = 500,
        judge: dict | None = None,
        judge_cache_dir: str | None = None,
        **kwargs: Any,
    ):
        if mismatch_weight > 1:
            raise ConfigError(f"model.mismatch_weight={mismatch_weight} leaves the fakes' term a negative weight "
                              f"(1 − w); use a weight in [0, 1] (GAN-CLS: 0.5).")
        self._noise_dim = generator.noise_dim
        self._text_margin: Tensor | None = None
        self._max_length = max_caption_length
        super().__init__(generator, *args, **kwargs)
        # The vocabulary and the judge settings stay out of hparams (checkpoints hold plain values only; the run's
        # config in the checkpoint has both).
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d", "growth", "loss",
                                          "schedulers", "vocabulary", "judge"])
        self.vocabulary = Vocabulary([str(word) for word in vocabulary])
        self.judge_settings = JudgeSettings(**{str(k): v for k, v in dict(judge or {}).items()})
        self._judge = None

    # ----- the hooks ---------------------------------------------------------------------------------------
    @staticmethod
    def image_generator(generator: TextToImageGenerator):
        return generator.image

    def _grid_buffers(self) -> None:
        rows, columns = self.hparams.grid_rows, self.hparams.grid_columns
        noise = torch.randn(rows * columns, self._noise_dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("grid_noise", noise)
        # Filled from the held-out captions when fitting starts (kept in checkpoints); zeros until then.
        self.register_buffer("grid_tokens", torch.zeros(rows, self._max_length, dtype=torch.int64))
        self.register_buffer("grid_lengths", torch.zeros(rows, dtype=torch.int64))

    def sample_inputs(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        n = self.batch_size_of(batch)
        return {"tokens": batch["tokens"], "lengths": batch["length"],
                "noise": torch.randn(n, self._noise_dim, device=self.device, generator=generator)}

    @property
    def _encoder_is_ds(self) -> bool:
        return self.hparams.text_encoder_loss == "discriminator"

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        if not self._encoder_is_ds:
            return super().build_optimizers()
        encoder = list(self.generator.text_encoder.parameters())
        kept = {id(p) for p in encoder}
        return {"g": self.optimizer_g([p for p in self.generator.parameters() if id(p) not in kept]),
                "d": self.optimizer_d([*self.discriminator.parameters(), *encoder])}

    def make_fakes(self, inputs: dict[str, Tensor], phase: Phase, net: torch.nn.Module,
                   generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        out = net(inputs["tokens"], inputs["lengths"], inputs["noise"], phase.stage, phase.alpha, generator,
                  detach_text=self._encoder_is_ds)
        return out.images, {"embedding": out.embedding, "mu": out.mu, "log_var": out.log_var}

    def _d_text(self, extras: dict, for_generator: bool) -> Tensor:
        """φ as D reads it: attached in D's step when L_D trains the encoder, else detached."""
        embedding = extras["embedding"]
        return embedding if self._encoder_is_ds and not for_generator else embedding.detach()

    def critic(self, images: Tensor, phase: Phase, extras: dict, for_generator: bool = False) -> Tensor:
        return self.discriminator(images, phase.stage, phase.alpha, self._d_text(extras, for_generator))

    def _mismatching(self, n: int) -> bool:
        return self.hparams.matching_aware and self.hparams.mismatch_weight > 0 and n >= 2

    def mismatch_index(self, text: Tensor) -> Tensor:
        """For each item, the other item whose caption it is shown with in the matching-aware term: the previous one
        (``roll``), or the one whose φ is nearest to its own (``nearest``: the hardest negative in the batch; an
        identical caption, at distance 0, is not a mismatch and is skipped; with none left, the previous one)."""
        rolled = torch.arange(text.shape[0], device=text.device).roll(1)
        if self.hparams.mismatch == "roll":
            return rolled
        distances = torch.cdist(text.float(), text.float())
        distances = distances.masked_fill(distances <= 1e-6, float("inf"))  # itself and identical captions
        nearest = distances.min(dim=1)
        return torch.where(nearest.values.isinf(), rolled, nearest.indices)

    def fake_weight(self) -> float:
        return 1.0 - self.hparams.mismatch_weight if self.hparams.matching_aware else 1.0

    def extra_d_loss(self, real: Tensor, real_scores: Tensor, phase: Phase, extras: dict) -> dict[str, Tensor]:
        if not self._mismatching(real.shape[0]):
            self._text_margin = None
            return {}
        text = self._d_text(extras, for_generator=False)
        scores = self.discriminator(real, phase.stage, phase.alpha, text[self.mismatch_index(text.detach())])
        self._text_margin = (real_scores - scores).mean().detach()
        return {"mismatch": self.hparams.mismatch_weight * self.loss.fake_term(scores)}

    def train_slice(self, batch: dict[str, Any], phase: Phase) -> dict[str, Tensor]:
        logged = super().train_slice(batch, phase)
        if self._text_margin is not None:
            logged["train/text_margin"] = self._text_margin
        return logged

    def extra_g_loss(self, extras: dict) -> dict[str, Tensor]:
        return {"kl": self.hparams.kl_weight * gaussian_kl(extras["mu"], extras["log_var"])}

    # ----- captions ---------------------------------------------------------------------------------------
    def encode_captions(self, captions: Sequence[str]) -> tuple[Tensor, Tensor, list[str]]:
        """(tokens N×L, lengths N, the words the vocabulary does not hold, each once) of typed captions."""
        encoded = [self.vocabulary.encode(text, self._max_length) for text in captions]
        unknown = list(dict.fromkeys(w for text in captions for w in self.vocabulary.unknown_words(text)))
        tokens = torch.stack([t for t, _ in encoded]).to(self.device)
        return tokens, torch.stack([n for _, n in encoded]).to(self.device), unknown

    @torch.no_grad()
    def from_captions(self, tokens: Tensor, lengths: Tensor, per_caption: int,
                      generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """``per_caption`` fakes of each caption (rows of N×per_caption, caption-major) by the evaluation generator."""
        tokens, lengths = tokens.repeat_interleave(per_caption, 0), lengths.repeat_interleave(per_caption, 0)
        if noise is None:
            noise = torch.randn(len(tokens), self._noise_dim, device=self.device, generator=generator)
        inputs = {"tokens": tokens, "lengths": lengths, "noise": noise}
        return self.make_fakes(inputs, self.phase, self.eval_generator, generator)[0].clamp(-1, 1)

    def caption_grid(self, captions: Sequence[str], per_caption: int, generator: torch.Generator | None = None):
        """(images, per_caption, captions) of typed captions; unknown words are named in one warning."""
        tokens, lengths, unknown = self.encode_captions(captions)
        if unknown:
            warnings.warn(f"Words the model never saw in training (read as <unk>): {', '.join(unknown)}.",
                          stacklevel=2)
        return self.from_captions(tokens, lengths, per_caption, generator), per_caption, list(captions)

    # ----- evaluation ---------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and self.hparams.text_acc and getattr(datamodule, "attributes", None) is not None:
            self._load_judge(datamodule)  # before training: a judge to train takes its minutes now, not mid-run
        if datamodule is not None and not self.grid_lengths.any():
            held_out = datamodule.eval_subset("test_captions", self.hparams.grid_rows)
            for row in range(len(held_out)):
                self.grid_tokens[row] = held_out[row]["tokens"][: self._max_length]
                self.grid_lengths[row] = held_out[row]["length"]

    def evaluation_streams(self) -> list[EvalStream]:
        """``captions``: one fake per held-out test caption, against the test images at the current resolution."""
        return [EvalStream(STREAM, make=self.draw_from_batch, real=RealSet("test", size=self.phase.resolution),
                           inputs=RealSet("test_captions"))]

    @torch.no_grad()
    def draw_from_batch(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """One fake per caption of a collated batch of captioned items."""
        return self.from_captions(batch["tokens"], batch["length"], 1, generator)

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n fakes of the grid's captions in turn (what ``val/ms_ssim`` pairs); needs the grid captions set."""
        rows = max(1, int((self.grid_lengths > 0).sum()))
        index = torch.arange(n, device=self.device) % rows
        lengths = self.grid_lengths[index].clamp(min=1)
        return self.from_captions(self.grid_tokens[index], lengths, 1, generator)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking:
            return
        scores = self.text_accuracy()
        if scores is not None:
            self.log("val/text_acc", scores.pop("mean"), prog_bar=True, sync_dist=True)
            self.log_dict({f"val/text_acc/{name}": value for name, value in scores.items()}, sync_dist=True)

    def _load_judge(self, datamodule):
        """The cached judge, else trained once (on real images; also from inside validation, hence grad on)."""
        if self._judge is None:
            with torch.inference_mode(False), torch.enable_grad():
                self._judge = load_judge(datamodule, self.hparams.judge_cache_dir, self.judge_settings, self.device)
        return self._judge

    def text_accuracy(self) -> dict[str, float] | None:
        """The judge's accuracy on the attributes each held-out caption names ({attribute: share, "mean": share over
        all named (caption, attribute) pairs}), or None where the data has no judge."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if not self.hparams.text_acc or getattr(datamodule, "attributes", None) is None:
            return None
        judge = self._load_judge(datamodule)
        names = judge.names
        values = dict(judge.spec)
        fid = next((c for c in self.trainer.callbacks if isinstance(c, FIDCallback)), None)
        seed, chunk_size = (fid.seed, fid.batch_size) if fid is not None else (0, 50)
        inputs = datamodule.eval_subset("test_captions", self.hparams.text_acc_samples)
        rank, world = self.global_rank, self.trainer.world_size
        correct = torch.zeros(len(names), dtype=torch.int64, device=self.device)
        counted = torch.zeros_like(correct)
        with torch.random.fork_rng(devices=[]):
            for chunk in range(rank, -(-len(inputs) // chunk_size), world):
                items = [inputs[i] for i in range(chunk * chunk_size, min(len(inputs), (chunk + 1) * chunk_size))]
                generator = torch.Generator(self.device).manual_seed(chunk_seed(seed, STREAM, chunk))
                tokens = torch.stack([item["tokens"] for item in items]).to(self.device)
                lengths = torch.stack([item["length"] for item in items]).to(self.device)
                fakes = self.from_captions(tokens, lengths, 1, generator)
                fakes = upsample(fakes, judge.image_shape[-1] // fakes.shape[-1])
                predicted = judge.predict(fakes)
                for row, item in enumerate(items):
                    for name, value in named_attributes(item["caption"]).items():
                        k = names.index(name)
                        counted[k] += 1
                        correct[k] += int(predicted[row, k] == values[name].index(value))
        correct, counted = self.all_gather(correct), self.all_gather(counted)
        if correct.ndim > 1:
            correct, counted = correct.sum(0), counted.sum(0)
        if counted.sum() == 0:
            return None
        scores = {name: correct[k].item() / counted[k].item() for k, name in enumerate(names) if counted[k] > 0}
        return scores | {"mean": correct.sum().item() / counted.sum().item()}

    @torch.no_grad()
    def visualizations(self) -> dict[str, tuple]:
        """``caption_rows``: a row per held-out caption (fixed), ``grid_columns`` noise draws per row, the caption under
        it; ``samples`` of ProGAN is not drawn (T2F has no unconditional latent)."""
        rows = int((self.grid_lengths > 0).sum())
        if rows == 0:
            return {}
        columns = self.hparams.grid_columns
        images = self.from_captions(self.grid_tokens[:rows], self.grid_lengths[:rows], columns,
                                    noise=self.grid_noise[: rows * columns])
        labels = [self.vocabulary.decode(tokens.tolist()) for tokens in self.grid_tokens[:rows]]
        return {"caption_rows": (images, columns, labels)}
