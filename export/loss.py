"""The CR-FIQA training loss: an ArcFace classifier plus certainty-ratio regression.

The ArcFace head keeps one centre per identity. For every sample, the cosine to its own centre
(CCS) and the largest cosine to any other centre (NNCCS) say how certainly the sample sits in its
class; their ratio, the certainty ratio CR, is the regression target of the backbone's quality
head `qs` (Boutros et al., "CR-FIQA", CVPR 2023).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fiqa_cli.model_contract import CR_FORMULA_PAPER, CR_FORMULA_RELEASED

CR_EPSILON = 1e-9


class ArcFaceHead(nn.Module):
    """Class centres W (embedding_size x num_classes); maps embeddings to their cosines with W.

    The parameter is called `kernel`, with the released CR-FIQA header's shape, so that a header
    saved by the released code loads as it is.
    """

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(embedding_size, num_classes))
        nn.init.normal_(self.kernel, std=0.01)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        # float32 even under autocast: a half-precision cosine near 1 is too coarse for the margin
        # and for a ratio of two cosines.
        with torch.autocast(embeddings.device.type, enabled=False):
            cosines = F.normalize(embeddings.float(), dim=1) @ F.normalize(
                self.kernel.float(), dim=0
            )
        return cosines.clamp(-1.0, 1.0)


def additive_angular_margin(
    cosines: torch.Tensor, labels: torch.Tensor, margin: float
) -> torch.Tensor:
    """cos(theta + margin) in each row's target column, the other cosines unchanged.

    cos(theta + m) is expanded as cos(theta)cos(m) - sin(theta)sin(m) rather than taken through
    acos, whose gradient is infinite at cos = +-1. Beyond theta = pi - m, cos(theta + m) would rise
    again and reward a sample for moving away from its centre; there the target logit falls back
    to cos(theta) - m sin(m), which keeps it decreasing in theta (insightface's ArcFace does the
    same; the released CR-FIQA code takes the acos route without this guard, which only differs
    for samples more than 150 degrees from their own centre).
    """
    target = cosines.gather(1, labels[:, None])
    # The floor keeps sin's gradient finite when a sample sits exactly on its centre.
    sine = (1.0 - target * target).clamp_min(1e-7).sqrt()
    with_margin = target * math.cos(margin) - sine * math.sin(margin)
    with_margin = torch.where(
        target > math.cos(math.pi - margin), with_margin, target - margin * math.sin(margin)
    )
    return cosines.scatter(1, labels[:, None], with_margin)


class CertaintyRatio(NamedTuple):
    ccs: torch.Tensor  # N x 1: cosine to the own class centre
    nnccs: torch.Tensor  # N x 1: largest cosine to any other class centre
    ratio: torch.Tensor  # N x 1: the regression target of the quality head


@torch.no_grad()
def certainty_ratio(
    cosines: torch.Tensor, labels: torch.Tensor, formula: str = CR_FORMULA_PAPER
) -> CertaintyRatio:
    """CCS, NNCCS and CR from margin-free cosines; a target, so no gradient flows through it.

    formula "paper": CR = CCS / (NNCCS + 1 + eps), as written in the paper. NNCCS + 1 lies in
    [0, 2]: the denominator never changes sign and reaches 0 only if some other centre is exactly
    opposite the sample, so CR moves smoothly with both cosines.
    formula "released": CR = CCS / (NNCCS + eps), as the released training code computes it.
    That ratio explodes, and changes sign, as NNCCS approaches or crosses 0, which happens with
    few classes (it is harmless with CASIA-WebFace's 10k identities, where some other centre is
    always close). The released code also masks the own class with -1e-12 instead of excluding
    it, so there NNCCS never drops below 0; here NNCCS is the true maximum over other classes.
    """
    ccs = cosines.gather(1, labels[:, None])
    # Cosines are >= -1, so -2 removes the own class from the maximum.
    others = cosines.scatter(1, labels[:, None], -2.0)
    nnccs = others.max(dim=1, keepdim=True).values
    if formula == CR_FORMULA_PAPER:
        ratio = ccs / (nnccs + 1.0 + CR_EPSILON)
    elif formula == CR_FORMULA_RELEASED:
        ratio = ccs / (nnccs + CR_EPSILON)
    else:
        raise ValueError(
            f"unknown CR formula {formula!r}: use {CR_FORMULA_PAPER!r} or {CR_FORMULA_RELEASED!r}"
        )
    return CertaintyRatio(ccs, nnccs, ratio)


class LossParts(NamedTuple):
    total: torch.Tensor
    classification: torch.Tensor  # ArcFace cross-entropy
    quality: torch.Tensor  # SmoothL1 between the quality head and CR, before weighting
    mean_certainty_ratio: torch.Tensor


class CRFIQALoss(nn.Module):
    """Total = CE(ArcFace logits) + quality_weight * SmoothL1(beta=0.5)(quality, CR).

    Holds the ArcFace head, so its centres are trained (and checkpointed) with this module.
    `classified`, a boolean mask, limits the cross-entropy to some samples while every sample
    still gets a CR target: samples the classifier never learns from keep the CR that its
    centres give them. `cr_target`, when given, replaces the CR of the head's centres as the
    quality head's target (a teacher's CR, see teacher_targets.py); the classifier is unchanged.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        scale: float = 64.0,
        margin: float = 0.5,
        quality_weight: float = 10.0,
        cr_formula: str = CR_FORMULA_PAPER,
    ) -> None:
        super().__init__()
        if cr_formula not in (CR_FORMULA_PAPER, CR_FORMULA_RELEASED):
            raise ValueError(f"unknown CR formula {cr_formula!r}")
        self.head = ArcFaceHead(embedding_size, num_classes)
        self.scale = scale
        self.margin = margin
        self.quality_weight = quality_weight
        self.cr_formula = cr_formula

    def forward(
        self,
        embeddings: torch.Tensor,
        quality: torch.Tensor,
        labels: torch.Tensor,
        classified: torch.Tensor | None = None,
        cr_target: torch.Tensor | None = None,
    ) -> LossParts:
        cosines = self.head(embeddings)
        if cr_target is None:
            target = certainty_ratio(cosines, labels, self.cr_formula).ratio
        else:
            target = cr_target.float().view(-1, 1)
        logits = self.scale * additive_angular_margin(cosines, labels, self.margin)
        if classified is None:
            classification = F.cross_entropy(logits, labels)
        else:
            # A masked mean rather than indexing: the centres stay in the graph even when no
            # sample is classified, which DDP needs on every rank.
            per_sample = F.cross_entropy(logits, labels, reduction="none")
            weights = classified.to(per_sample.dtype)
            classification = (per_sample * weights).sum() / weights.sum().clamp_min(1.0)
        quality_loss = F.smooth_l1_loss(quality.float().view(-1, 1), target, beta=0.5)
        total = classification + self.quality_weight * quality_loss
        return LossParts(total, classification, quality_loss, target.mean())
