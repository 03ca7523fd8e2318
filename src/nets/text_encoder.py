"""T2F's text side (Karnewar 2018, akanimax/T2F `networks/TextEncoder.py`, `networks/ConditionAugmentation.py`).

TextEncoder: token ids N×L (0 = padding) and lengths N → word embeddings (``embedding_dim``, paper 128) → an LSTM
(``num_layers`` 3, ``hidden_size`` 256) over the packed sequences (padding never enters it) → the last layer's
hidden state after each caption's last real token: the text embedding φ(t), N×hidden_size. With ``normalize``
(not in the paper) φ is standardised per feature over the batch (BatchNorm without affine parameters; running
statistics at evaluation), so the encoder cannot collapse every caption onto one point: measured on the faces,
without it φ's spread across captions fell to 1% of its size (the encoder trained by D) or φ itself to ~3e-4 (by
G and the KL), and D never told a caption that fits an image from one that does not.

ConditioningAugmentation (StackGAN's, Zhang et al. 2017): one linear layer gives μ and log σ² (N×output_dim each)
from φ(t); c = μ + σ·ε, ε ∼ N(0, I). We predict log σ² as StackGAN defines it; the T2F code predicts σ directly as
ReLU(raw) + 1e-12, which has no gradient once raw < 0 and then pins the KL term's −log σ² near 55 per dimension.
The KL term is :func:`src.nets.losses.gaussian_kl`.
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from src.utils.arguments import Meaning, checked

Size = Annotated[int, Meaning("a layer size", at_least=1)]


class TextEncoder(nn.Module):
    """φ(t): (tokens int64 N×L, lengths int64 N, each ≥ 1) → N×hidden_size."""

    @checked
    def __init__(self, vocab_size: Annotated[int, Meaning("the vocabulary size (with <pad> and <unk>)", at_least=2)],
                 embedding_dim: Size = 128, hidden_size: Size = 256, num_layers: Size = 3, normalize: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.norm = nn.BatchNorm1d(hidden_size, affine=False) if normalize else nn.Identity()
        self.output_dim = hidden_size

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        packed = pack_padded_sequence(self.embedding(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        phi = hidden[-1]  # unsorted back to the batch order by the packing's indices
        if self.training and phi.shape[0] == 1 and isinstance(self.norm, nn.BatchNorm1d):
            return F.batch_norm(phi, self.norm.running_mean, self.norm.running_var, training=False)  # no batch
        return self.norm(phi)


class ConditioningAugmentation(nn.Module):
    """φ(t) N×input_dim → (c, μ, log σ²), each N×output_dim; ε from ``generator`` (default: the global RNG)."""

    @checked
    def __init__(self, input_dim: Size = 256, output_dim: Size = 178):
        super().__init__()
        self.linear = nn.Linear(input_dim, 2 * output_dim)
        self.output_dim = output_dim

    def forward(self, embedding: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        mu, log_var = self.linear(embedding).chunk(2, dim=1)
        epsilon = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        return mu + (0.5 * log_var).exp() * epsilon, mu, log_var
