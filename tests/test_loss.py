"""The CR-FIQA loss on a hand-built batch whose cosines are known exactly."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from fiqa_cli.export.loss import (  # noqa: E402
    CRFIQALoss,
    additive_angular_margin,
    certainty_ratio,
)

# Class centres are the first three unit axes of a 4-d embedding space, so each embedding's
# cosines to the centres are simply its first three coordinates (all embeddings have norm 1).
EMBEDDINGS = [
    [0.8, 0.6, 0.0, 0.0],  # class 0: CCS 0.8, NNCCS 0.6 (class 1)
    [0.0, 0.6, 0.0, -0.8],  # class 1: CCS 0.6, NNCCS 0.0
    [-0.36, -0.48, 0.8, 0.0],  # class 2: CCS 0.8, NNCCS -0.36 (every other centre is negative)
]
LABELS = [0, 1, 2]
EXPECTED_CCS = [0.8, 0.6, 0.8]
EXPECTED_NNCCS = [0.6, 0.0, -0.36]


def hand_built_loss(cr_formula: str = "paper") -> CRFIQALoss:
    loss = CRFIQALoss(embedding_size=4, num_classes=3, cr_formula=cr_formula)
    with torch.no_grad():
        # Scaled centres: the head must normalise them.
        loss.head.kernel.copy_(torch.eye(4, 3) * 3.0)
    return loss


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(EMBEDDINGS) * 2.5, torch.tensor(LABELS)


def test_certainty_ratio_of_known_cosines() -> None:
    embeddings, labels = batch()
    cosines = hand_built_loss().head(embeddings)
    torch.testing.assert_close(cosines, torch.tensor(EMBEDDINGS)[:, :3])

    paper = certainty_ratio(cosines, labels, "paper")
    torch.testing.assert_close(paper.ccs.squeeze(1), torch.tensor(EXPECTED_CCS))
    torch.testing.assert_close(paper.nnccs.squeeze(1), torch.tensor(EXPECTED_NNCCS))
    torch.testing.assert_close(
        paper.ratio.squeeze(1), torch.tensor([0.8 / 1.6, 0.6 / 1.0, 0.8 / 0.64])
    )

    released = certainty_ratio(cosines, labels, "released")
    # CCS / NNCCS: huge at NNCCS = 0, negative for NNCCS < 0; why "paper" is the default.
    assert released.ratio[0].item() == pytest.approx(0.8 / 0.6, rel=1e-5)
    assert released.ratio[1].item() == pytest.approx(0.6 / 1e-9, rel=1e-3)
    assert released.ratio[2].item() == pytest.approx(0.8 / -0.36, rel=1e-5)


def test_unknown_formula_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown CR formula"):
        CRFIQALoss(4, 3, cr_formula="ratio")


def test_margin_changes_the_target_class_only() -> None:
    cosines = torch.tensor([[0.8, 0.6, 0.0], [0.1, 0.6, -0.8], [-0.95, 0.3, 0.2]])
    labels = torch.tensor([0, 1, 0])
    with_margin = additive_angular_margin(cosines, labels, 0.5)

    target = torch.zeros_like(cosines, dtype=torch.bool)
    target[torch.arange(3), labels] = True
    assert torch.equal(with_margin[~target], cosines[~target])
    # cos(theta + m) while theta + m stays below pi ...
    for row in (0, 1):
        expected = math.cos(math.acos(cosines[row, labels[row]].item()) + 0.5)
        assert with_margin[row, labels[row]].item() == pytest.approx(expected, abs=1e-6)
    # ... and beyond it (theta = 162 degrees here) a logit that still falls as theta grows.
    assert with_margin[2, 0].item() == pytest.approx(-0.95 - 0.5 * math.sin(0.5), abs=1e-6)
    assert with_margin[2, 0] < math.cos(math.pi - 0.5 + 0.5)


def test_loss_parts_add_up_and_targets_get_no_gradient() -> None:
    embeddings, labels = batch()
    embeddings.requires_grad_(True)
    quality = torch.tensor([[0.4], [0.7], [0.2]], requires_grad=True)
    loss = hand_built_loss()
    parts = loss(embeddings, quality, labels)

    cosines = torch.tensor(EMBEDDINGS)[:, :3]
    logits = 64.0 * additive_angular_margin(cosines, labels, 0.5)
    ratio = torch.tensor([[0.5], [0.6], [1.25]])
    torch.testing.assert_close(parts.classification, F.cross_entropy(logits, labels))
    torch.testing.assert_close(parts.quality, F.smooth_l1_loss(quality.detach(), ratio, beta=0.5))
    torch.testing.assert_close(parts.total, parts.classification + 10.0 * parts.quality)
    torch.testing.assert_close(parts.mean_certainty_ratio, ratio.mean())

    # The quality loss reaches the quality head only: CR is a target, not a path to the embeddings
    # or the class centres.
    into_embeddings, into_centres, into_quality = torch.autograd.grad(
        parts.quality, [embeddings, loss.head.kernel, quality], allow_unused=True
    )
    assert into_embeddings is None and into_centres is None
    assert into_quality.abs().sum() > 0
    assert not certainty_ratio(loss.head(embeddings), labels).ratio.requires_grad


def test_unclassified_samples_get_a_target_but_teach_the_classifier_nothing() -> None:
    embeddings, labels = batch()
    embeddings.requires_grad_(True)
    quality = torch.zeros(3, 1)
    loss = hand_built_loss()
    classified = torch.tensor([True, False, True])
    parts = loss(embeddings, quality, labels, classified)

    logits = 64.0 * additive_angular_margin(torch.tensor(EMBEDDINGS)[:, :3], labels, 0.5)
    torch.testing.assert_close(
        parts.classification, F.cross_entropy(logits[classified], labels[classified])
    )
    # All three samples keep their CR target.
    torch.testing.assert_close(parts.mean_certainty_ratio, torch.tensor(0.7833333))
    (into_embeddings,) = torch.autograd.grad(parts.classification, [embeddings])
    assert into_embeddings[1].abs().sum() == 0
    assert into_embeddings[0].abs().sum() > 0 and into_embeddings[2].abs().sum() > 0

    # With no sample classified the loss is zero, yet the centres stay in the graph (DDP
    # needs every parameter to get a gradient on every rank).
    nothing = loss(embeddings, quality, labels, torch.zeros(3, dtype=torch.bool))
    assert nothing.classification.item() == 0.0
    (into_centres,) = torch.autograd.grad(nothing.classification, [loss.head.kernel])
    assert torch.equal(into_centres, torch.zeros_like(into_centres))


def test_gradients_stay_finite_on_a_class_centre() -> None:
    loss = hand_built_loss()
    embeddings = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0]], requires_grad=True)
    quality = torch.zeros(2, 1, requires_grad=True)
    loss(embeddings, quality, torch.tensor([0, 1])).total.backward()
    assert torch.isfinite(embeddings.grad).all()
    assert torch.isfinite(loss.head.kernel.grad).all()
