"""The backbones: official CR-FIQA parameter layout and the (embedding, quality) contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fiqa_cli.export.backbones import BACKBONES, create_backbone  # noqa: E402

LAYOUT_FIXTURE = Path("fixtures") / "crfiqa_official_state_dict_layout.json"


@pytest.fixture(scope="module")
def official_layouts(shared_dir: Path) -> dict[str, dict[str, list[int]]]:
    return json.loads((shared_dir / LAYOUT_FIXTURE).read_text())


@pytest.mark.parametrize("name", ["iresnet50", "iresnet100"])
def test_state_dict_matches_official_layout_in_order(name, official_layouts):
    state_dict = create_backbone(name).state_dict()

    ours = [(key, list(tensor.shape)) for key, tensor in state_dict.items()]
    official = [(key, shape) for key, shape in official_layouts[name].items()]
    assert ours == official


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_forward_returns_embedding_and_quality(name):
    torch.manual_seed(0)
    model = create_backbone(name).eval()

    with torch.no_grad():
        embedding, quality = model(torch.rand(2, 3, 112, 112) * 2 - 1)

    assert embedding.shape == (2, 512) and embedding.dtype == torch.float32
    assert quality.shape == (2, 1) and quality.dtype == torch.float32
    assert torch.isfinite(embedding).all() and torch.isfinite(quality).all()
    # The quality head reads the BatchNorm1d features, which are also the embedding.
    assert torch.allclose(model.qs(embedding), quality)
    assert isinstance(model.features, torch.nn.BatchNorm1d)


def test_mobilefacenet_is_light():
    parameters = sum(p.numel() for p in create_backbone("mobilefacenet").parameters())
    assert 0.9e6 < parameters < 1.4e6


@pytest.mark.parametrize("name", ["iresnet18", "mobilefacenet"])
def test_embedding_size_and_dropout_are_honoured(name):
    model = create_backbone(name, dropout=0.4, embedding_size=128).eval()

    with torch.no_grad():
        embedding, quality = model(torch.zeros(3, 3, 112, 112))

    assert embedding.shape == (3, 128) and quality.shape == (3, 1)
    assert model.dropout.p == 0.4


def test_unknown_backbone_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown backbone 'resnet9'") as error:
        create_backbone("resnet9")
    for name in BACKBONES:
        assert name in str(error.value)
