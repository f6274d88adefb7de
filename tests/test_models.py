"""Model loading: built-ins through open_clip's own path, spec parsing, errors, normalisation."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from typobench.models.classifier import ImageClassifier
from typobench.core.errors import UsageError
from typobench.models import list_model_names, load_model, parse_model_spec
from typobench.models.loading import ModelSpec, _tag_preprocess


def test_builtin_models_are_open_clip_models_and_small():
    for name in ("tiny-rn", "tiny-vit"):
        loaded = load_model(name)
        vision_params = sum(p.numel() for p in loaded.model.visual.parameters())
        assert vision_params < 1_000_000
        assert 32 <= loaded.image_size[0] <= 64
        assert loaded.random_init
        assert not loaded.model.training


def test_tiny_rn_is_a_modified_resnet_with_layer4():
    loaded = load_model("tiny-rn")
    assert type(loaded.model.visual).__name__ == "ModifiedResNet"
    assert hasattr(loaded.model.visual, "layer4")


def test_random_init_is_reproducible_from_seed_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = load_model("tiny-rn", seed=0)
    after = torch.rand(1)
    assert torch.equal(before, after)
    assert a.fingerprint() == load_model("tiny-rn", seed=0).fingerprint()
    assert a.fingerprint() != load_model("tiny-rn", seed=1).fingerprint()


@pytest.mark.parametrize(
    ("spec", "pretrained", "expected"),
    [
        ("ViT-B-32:openai", None, ModelSpec("ViT-B-32", "openai")),
        ("ViT-B-32:laion2b_s34b_b79k", None, ModelSpec("ViT-B-32", "laion2b_s34b_b79k")),
        ("RN50", "openai", ModelSpec("RN50", "openai")),
        ("hf-hub:timm/ViT-B-16-SigLIP", None, ModelSpec("hf-hub:timm/ViT-B-16-SigLIP")),
        ("tiny-rn", None, ModelSpec("tiny-rn")),
    ],
)
def test_parse_model_spec(spec, pretrained, expected):
    assert parse_model_spec(spec, pretrained) == expected


def test_unknown_model_suggests_close_matches():
    with pytest.raises(UsageError) as info:
        load_model("ViT-B-23")
    message = str(info.value)
    assert "\n" not in message and "ViT-B-32" in message


def test_unknown_tag_suggests_tags_of_that_model():
    with pytest.raises(UsageError) as info:
        load_model("ViT-B-32:opnai")
    assert "openai" in str(info.value)


def test_missing_checkpoint_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_model("RN50", str(tmp_path / "missing.safetensors"))


def test_local_safetensors_checkpoint_round_trips_with_sha(tmp_path):
    source = load_model("tiny-vit", seed=5)
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, str(path))
    loaded = load_model("typobench-tiny-vit", str(path), seed=0)
    assert loaded.fingerprint() == source.fingerprint()
    assert loaded.checkpoint_sha256 is not None and len(loaded.checkpoint_sha256) == 64
    assert not loaded.random_init


def test_tag_normalisation_comes_from_the_tag_without_download():
    siglip = _tag_preprocess(ModelSpec("ViT-B-16-SigLIP", "webli"))
    openai = _tag_preprocess(ModelSpec("RN50", "openai"))
    assert siglip["mean"] == (0.5, 0.5, 0.5)
    assert openai["mean"][0] == pytest.approx(0.48145466)


def test_pixel_transform_gives_unnormalised_pixels_at_input_size():
    from PIL import Image

    loaded = load_model("tiny-rn")
    image = Image.new("RGB", (40, 30), (255, 255, 255))
    pixels = loaded.pixel_transform()(image)
    assert pixels.shape == (3, *loaded.image_size)
    assert torch.allclose(pixels, torch.ones_like(pixels))


def test_classifier_normalises_inside_forward():
    loaded = load_model("tiny-rn")
    seen = {}

    def capture(module, inputs):
        seen["x"] = inputs[0]

    handle = loaded.model.visual.register_forward_pre_hook(capture)
    classifier = ImageClassifier.of(loaded)
    pixels = torch.full((1, 3, *loaded.image_size), 0.5)
    classifier(pixels)
    handle.remove()
    expected = (0.5 - torch.tensor(loaded.mean)) / torch.tensor(loaded.std)
    assert torch.allclose(seen["x"][0, :, 0, 0], expected)


def test_list_model_names_has_builtins_and_open_clip():
    names = list_model_names()
    assert names[:2] == ["tiny-rn", "tiny-vit"]
    assert "ViT-B-32" in names and "RN50" in names


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_precision_changes_compute_dtype_but_not_the_answer(precision):
    from typobench.core.runtime import Runtime
    from typobench.stages.base import score

    loaded = load_model("tiny-vit")
    head = torch.nn.Linear(32, 5)
    classifier = ImageClassifier.of(loaded, head)
    pixels = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    runtime = Runtime(torch.device("cpu"), precision)
    with torch.no_grad(), runtime.autocast():
        low = classifier.features(pixels)
    assert low.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    full = score(classifier, pixels, Runtime(torch.device("cpu")))
    reduced = score(classifier, pixels, runtime)
    assert reduced.dtype == torch.float32
    assert torch.allclose(full, reduced, atol=0.1)


def test_unknown_precision_and_device_are_usage_errors():
    from typobench.core.runtime import Runtime

    with pytest.raises(UsageError, match="precision"):
        Runtime.create("cpu", "fp8")
    with pytest.raises(UsageError, match="device"):
        Runtime.create("tpu", "fp32")


@pytest.mark.parametrize("precision, expected", [("fp32", False), ("bf16", True)])
def test_reduced_precision_sessions_store_resnet_convolutions_channels_last(precision, expected):
    from typobench.harness.config import RunConfig
    from typobench.harness.session import Session

    session = Session.open(RunConfig(model="tiny-rn", precision=precision, device="cpu"), data=False)
    conv = session.model.model.visual.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) is expected
    assert conv.is_contiguous() is not expected
    pixels = torch.rand(2, 3, *session.model.image_size, generator=torch.Generator().manual_seed(0))
    reference = load_model("tiny-rn")  # the same seeded weights, contiguous, fp32
    with torch.no_grad(), session.runtime.autocast():
        stored = session.model.model.encode_image(pixels).float()
    assert torch.allclose(stored, reference.model.encode_image(pixels), atol=0.05)


def test_channels_last_leaves_vit_towers_alone():
    from typobench.models.loading import convolutions_channels_last

    loaded = load_model("tiny-vit")
    assert convolutions_channels_last(loaded.model) is False
    assert loaded.model.visual.conv1.weight.is_contiguous()
