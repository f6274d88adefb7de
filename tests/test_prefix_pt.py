"""Released Defense-Prefix tokens (``prompt:prefix=FILE.pt``): read with weights_only, width checked, provenance unknown."""

from __future__ import annotations

import pytest
import torch

from typobench.core.cache import TensorCache
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.defenses import BuildContext, Prompts, build_defended, create_defense, parse_defenses
from typobench.defenses.build import zeroshot_head
from typobench.defenses.prefix import placeholder_prefix, token_embedding_of
from typobench.defenses.prefix_pt import read_released
from typobench.models import load_model

CLASSES = ["cat", "dog", "car"]


@pytest.fixture(scope="module")
def tiny_rn():
    return load_model("tiny-rn", device="cpu")


def _zeroshot(loaded, specs):
    return build_defended(loaded, parse_defenses(specs), prompts=Prompts(("a photo of a {}.",)),
                          ctx=BuildContext(Runtime(torch.device("cpu")), 4),
                          head=lambda model, prompts: zeroshot_head(model, CLASSES, prompts, TensorCache(None)))


def test_a_released_pt_of_the_right_shape_is_the_prefix(tiny_rn, tmp_path):
    path = tmp_path / "defense_prefix.pt"
    torch.save({"ctx": placeholder_prefix(tiny_rn).unsqueeze(0)}, path)  # [1, 1, width], as a prompt learner keeps it
    learned = _zeroshot(tiny_rn, [f"prompt:prefix={path}"])
    as_text = _zeroshot(tiny_rn, ["prompt:prefix=x"])  # the placeholder's own embedding is the word "x"
    assert torch.allclose(learned.classifier.head.class_embeddings, as_text.classifier.head.class_embeddings, atol=1e-5)
    other = torch.randn(2, token_embedding_of(tiny_rn.model).embedding_dim, generator=torch.Generator().manual_seed(0))
    torch.save(other, tmp_path / "two.pt")  # a bare tensor, two tokens
    changed = _zeroshot(tiny_rn, [f"prompt:prefix={tmp_path / 'two.pt'}"])
    assert not torch.allclose(changed.classifier.head.class_embeddings, as_text.classifier.head.class_embeddings, atol=1e-3)
    defense = create_defense(f"prompt:prefix={path}")
    assert defense.selections() == [] and defense.provenance_unknown()  # trained on images nobody recorded


def test_a_released_pt_of_the_wrong_shape_is_one_line_naming_the_expected_shape(tiny_rn, tmp_path):
    width = token_embedding_of(tiny_rn.model).embedding_dim
    torch.save(torch.zeros(1, width + 3), tmp_path / "wide.pt")
    with pytest.raises(UsageError) as info:
        _zeroshot(tiny_rn, [f"prompt:prefix={tmp_path / 'wide.pt'}"])
    message = str(info.value)
    assert "\n" not in message and "field 'prefix'" in message and f"expected [T, {width}]" in message
    assert f"(1, {width + 3})" in message
    torch.save({"a": torch.zeros(3), "b": torch.zeros(3)}, tmp_path / "two_tensors.pt")
    with pytest.raises(UsageError, match="holds no single float tensor"):
        read_released(tmp_path / "two_tensors.pt")
    (tmp_path / "junk.pt").write_text("not a torch file")
    with pytest.raises(UsageError, match=r"weights_only=True"):
        read_released(tmp_path / "junk.pt")
    with pytest.raises(UsageError, match="field 'prefix'.*not found"):
        create_defense(f"prompt:prefix={tmp_path / 'missing.pt'}")
