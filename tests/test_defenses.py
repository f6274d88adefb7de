"""Defenses as part of the model under test (``typobench.defenses``): each kind on tiny models, composition,
spec errors, the harness (results, keys, transfer attacks, suites, the CLI) and the sanity flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from typobench.cli import main
from typobench.core.cache import TensorCache
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.data import sample_hash, stratified_subset
from typobench.defenses import BuildContext, Prompts, build_defended, create_defense, parse_defenses, sanity_flags
from typobench.defenses.build import defense_fingerprint, zeroshot_head
from typobench.defenses.pixels import downscale, gaussian_blur, jpeg_reencode
from typobench.defenses.prefix import FILE_FORMAT, PrefixResult, placeholder_prefix, save_prefix
from typobench.defenses.sanity import transfer_pairs
from typobench.harness.config import RunConfig, load_data
from typobench.harness.results import read_results
from typobench.harness.run import run_suite
from typobench.harness.session import Session
from typobench.heads.build import build_zeroshot_head
from typobench.heads.zeroshot import ZeroShotHead
from typobench.leaderboard.boards import Boards
from typobench.leaderboard.entry import _model
from typobench.leaderboard.entry_fields import EntryError
from typobench.leaderboard.validate import Validator
from typobench.models import load_model
from typobench.models.classifier import ImageClassifier
from typobench.models.units import capture, find_layers
from typobench.stages.base import Batch, RunContext
from typobench.adversarial.pgd import PGDConfig
from typobench.stages.pgd import PGDStage
from typobench.suites import parse_suite
from typobench.suites.edit import spec_from_dict
from typobench.suites.toml_writer import to_toml

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_rn():
    return load_model("tiny-rn", device="cpu")


@pytest.fixture(scope="module")
def tiny_vit():
    return load_model("tiny-vit", device="cpu")


def _pixels(loaded, n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, *loaded.image_size, generator=torch.Generator().manual_seed(seed))


def _head(classes: int = 5, dim: int = 32, seed: int = 0) -> ZeroShotHead:
    embeddings = nn.functional.normalize(torch.randn(classes, dim, generator=torch.Generator().manual_seed(seed)), dim=1)
    return ZeroShotHead(embeddings, logit_scale=50.0)


def _plain(loaded, head: nn.Module | None = None) -> ImageClassifier:
    return ImageClassifier.of(loaded, head or _head())


def _defend(loaded, specs, *, images: torch.Tensor | None = None, head: nn.Module | None = None):
    """``specs`` built on ``loaded`` with a fixed head; mean ablation averages over ``images``."""
    fixed = head or _head()
    provider = (lambda request: (images, {"source": "test", "n": len(images)})) if images is not None else None
    return build_defended(loaded, parse_defenses(specs), prompts=None, head=lambda model, prompts: (fixed, {}),
                          ctx=BuildContext(Runtime(CPU), 4, provider))


@torch.no_grad()
def _with_hook(classifier: nn.Module, module: nn.Module, edit, x: torch.Tensor) -> torch.Tensor:
    handle = module.register_forward_hook(lambda m, i, out: edit(out.clone()))
    try:
        return classifier(x)
    finally:
        handle.remove()


# -- ablate -------------------------------------------------------------------------------------------


def test_zero_ablating_a_channel_equals_zeroing_it_and_leaves_the_undefended_model_alone(tiny_rn):
    x = _pixels(tiny_rn)
    defended = _defend(tiny_rn, ["ablate:units=layer4:3+layer4:17"]).classifier
    plain = _plain(tiny_rn)

    def zero(out):
        out[:, [3, 17]] = 0
        return out

    with torch.no_grad():
        expected = _with_hook(plain, tiny_rn.model.visual.layer4, zero, x)
        assert torch.allclose(defended(x), expected, atol=1e-6)
        assert not torch.allclose(plain(x), expected, atol=1e-4)
        assert torch.equal(plain(x), plain(x))  # no hook is left behind by the defended forward
        space = find_layers(defended)
        with capture(space) as seen:  # hooks of a reader (a neurons capture) see the defended activations
            defended(x)
        assert seen["layer4"][:, [3, 17]].abs().max() == 0 and seen["layer4"].abs().max() > 0
    assert not tiny_rn.model.visual.layer4._forward_hooks


def test_mean_ablation_sets_the_channel_to_its_mean_over_the_given_images(tiny_rn):
    x, reference = _pixels(tiny_rn, seed=1), _pixels(tiny_rn, n=6, seed=2)
    defended = _defend(tiny_rn, ["ablate:units=layer4:5,mode=mean,mean_images=train"], images=reference)
    assert defended.records[0]["mean_images"] == {"source": "test", "n": 6}
    plain = _plain(tiny_rn)
    acts = {}
    _with_hook(plain, tiny_rn.model.visual.layer4, lambda out: acts.setdefault("a", out), reference)
    mean = acts["a"][:, 5].mean()

    def fill(out):
        out[:, 5] = mean
        return out

    assert torch.allclose(defended.classifier(x), _with_hook(plain, tiny_rn.model.visual.layer4, fill, x), atol=1e-5)


def test_vit_mlp_units_and_attention_heads_are_ablated(tiny_vit):
    x = _pixels(tiny_vit)
    plain = _plain(tiny_vit)
    block = tiny_vit.model.visual.transformer.resblocks[1]
    defended = _defend(tiny_vit, ["ablate:units=resblocks.1.mlp:7+resblocks.1.attn:1"]).classifier
    heads, d = block.attn.num_heads, block.attn.head_dim
    weight = block.attn.out_proj.weight

    def zero_unit(out):
        out[..., 7] = 0
        return out

    saved = weight.detach().clone()
    with torch.no_grad():  # a head's output zeroed == its slice of out_proj zeroed
        weight[:, d:2 * d] = 0
        try:
            expected = _with_hook(plain, block.mlp.gelu, zero_unit, x)
        finally:
            weight.copy_(saved)
        assert heads == 2 and torch.allclose(defended(x), expected, atol=1e-5)


def test_unknown_layer_or_unit_names_the_field(tiny_rn):
    with pytest.raises(UsageError, match=r"field 'units'.*no layer 'layer5'.*did you mean layer4"):
        _defend(tiny_rn, ["ablate:units=layer5:1"])
    with pytest.raises(UsageError, match=r"field 'units'.*layer4 has 256 units"):
        _defend(tiny_rn, ["ablate:units=layer4:999"])


def _neurons_json(path: Path, run_dir: Path, ref_limit: int = 8) -> Path:
    blame = [{"rank": r, "neuron": f"layer4:{u}"} for r, u in enumerate([9, 4, 30, 2, 11], start=1)]
    run = {"dir": str(run_dir)}
    if (run_dir / "results.json").is_file():  # as `typobench neurons` records its run
        results = json.loads((run_dir / "results.json").read_text())
        run.update(config_hash=results["config_hash"], model=results["model"]["label"],
                   weights_sha256=results["model"]["weights_sha256"])
    report = {"run": run, "config": {"ref_limit": ref_limit, "seed": 3, "top_k": 3},
              "reference": {"n": ref_limit, "clean_accuracy": 0.1},
              "analyses": [{"stage": "typo", "kind": "failure", "blame": blame[::-1], "blamed": ["layer4:9", "layer4:4",
                                                                                                  "layer4:30"]},
                           {"stage": "typo", "kind": "lift", "blame": blame[:1], "blamed": ["layer4:9"]}]}
    path.write_text(json.dumps(report))
    return path


def test_units_from_a_neurons_json_are_its_top_k_and_errors_name_the_field(tmp_path):
    path = _neurons_json(tmp_path / "neurons.json", tmp_path)
    assert create_defense(f"ablate:from={path},stage=typo,k=4").units == ["layer4:9", "layer4:4", "layer4:30", "layer4:2"]
    assert create_defense(f"ablate:from={tmp_path},stage=typo").units == ["layer4:9", "layer4:4", "layer4:30"]
    described = create_defense(f"ablate:from={path},stage=typo,k=2,mode=mean").describe()
    assert described["units_from"] == "neurons" and len(described["neurons_json_sha256"]) == 64
    with pytest.raises(UsageError, match=r"field 'stage': 'tyop'.*did you mean typo"):
        create_defense(f"ablate:from={path},stage=tyop")
    with pytest.raises(UsageError, match=r"field 'k': .*ranks 5 units"):
        create_defense(f"ablate:from={path},stage=typo,k=6")
    with pytest.raises(UsageError, match=r"field 'event': stage 'typo' has no 'hijack' blame .*use one of failure, lift"):
        create_defense(f"ablate:from={path},stage=typo,event=hijack")
    with pytest.raises(UsageError, match=r"field 'event': 'crash' is not one of failure, lift, hijack"):
        create_defense(f"ablate:from={path},stage=typo,event=crash")
    (tmp_path / "units.txt").write_text("# blamed\nlayer4:1\n\nlayer4:2  # second\n")
    assert create_defense(f"ablate:file={tmp_path / 'units.txt'}").units == ["layer4:1", "layer4:2"]


# -- interpolate --------------------------------------------------------------------------------------


def test_interpolation_endpoints_are_the_two_checkpoints_exactly(tiny_rn, tmp_path):
    other = load_model("tiny-rn", device="cpu", seed=1)
    checkpoint = tmp_path / "b.safetensors"
    save_file({k: v.contiguous().clone() for k, v in other.model.state_dict().items()}, str(checkpoint))
    x, head = _pixels(tiny_rn), _head()
    built = {a: _defend(tiny_rn, [f"interpolate:checkpoint={checkpoint},alpha={a}"], head=head) for a in (0, 0.5, 1)}
    with torch.no_grad():
        assert torch.equal(built[0].classifier(x), _plain(tiny_rn, head)(x))
        assert torch.equal(built[1].classifier(x), _plain(other, head)(x))
    prints = {a: b.model.fingerprint() for a, b in built.items()}
    assert prints[0] == tiny_rn.fingerprint() and prints[1] == other.fingerprint()
    assert len({tiny_rn.fingerprint(), other.fingerprint(), prints[0.5]}) == 3
    assert built[0.5].records[0]["weights_sha256"] == prints[0.5]
    assert tiny_rn.model.state_dict()["visual.conv1.weight"].equal(load_model("tiny-rn").model.state_dict()[
        "visual.conv1.weight"])  # the loaded model is not changed: the defense interpolates a copy


def test_interpolating_another_architecture_is_refused(tiny_rn, tiny_vit, tmp_path):
    checkpoint = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous().clone() for k, v in tiny_vit.model.state_dict().items()}, str(checkpoint))
    with pytest.raises(UsageError, match=r"field 'checkpoint': not a checkpoint of the same architecture"):
        _defend(tiny_rn, [f"interpolate:checkpoint={checkpoint},alpha=0.5"])
    with pytest.raises(UsageError, match=r"field 'alpha': must be <= 1.0"):
        create_defense(f"interpolate:checkpoint={checkpoint},alpha=1.5")


# -- input ---------------------------------------------------------------------------------------------


def test_pixel_transforms_change_pixels_as_they_should(tiny_rn):
    x = _pixels(tiny_rn)
    flat = torch.full_like(x, 0.3)
    assert torch.allclose(gaussian_blur(flat, 2.0), flat, atol=1e-6)  # a blur keeps a flat image
    assert gaussian_blur(x, 1.0).std() < x.std()  # ... and smooths noise
    assert torch.allclose(downscale(flat, 4), flat, atol=1e-6) and downscale(x, 4).std() < x.std()
    jpeg = jpeg_reencode(x, 30)
    assert jpeg.shape == x.shape and not torch.allclose(jpeg, x, atol=0.05)
    assert torch.equal(jpeg * 255, (jpeg * 255).round())  # decoded 8-bit pixels


def test_identity_bpda_gradient_is_the_gradient_at_the_reencoded_image(tiny_rn):
    x, labels = _pixels(tiny_rn), torch.tensor([0, 1, 2, 3])
    defended = _defend(tiny_rn, ["input:jpeg=40,backward=identity"])
    assert defended.records[0]["bpda"] is True and defended.records[0]["differentiable"] is False
    plain = _plain(tiny_rn)

    def grad(classifier, pixels):
        pixels = pixels.clone().requires_grad_(True)
        nn.functional.cross_entropy(classifier(pixels), labels).backward()
        return pixels.grad

    # Straight-through: d/dx f(x + (jpeg(x) - x).detach()) = f'(jpeg(x)).
    assert torch.allclose(grad(defended.classifier, x), grad(plain, jpeg_reencode(x, 40)), atol=1e-6)


def test_defenses_compose_in_the_order_given(tiny_rn):
    x, head = _pixels(tiny_rn), _head()
    plain = _plain(tiny_rn, head)
    first = _defend(tiny_rn, ["input:blur=1.5", "input:downscale=2"], head=head).classifier
    second = _defend(tiny_rn, ["input:downscale=2", "input:blur=1.5"], head=head).classifier
    with torch.no_grad():
        assert torch.allclose(first(x), plain(downscale(gaussian_blur(x, 1.5), 2)), atol=1e-6)
        assert torch.allclose(second(x), plain(gaussian_blur(downscale(x, 2), 1.5)), atol=1e-6)
        assert not torch.allclose(first(x), second(x), atol=1e-5)


# -- prompt --------------------------------------------------------------------------------------------


def _zeroshot(loaded, specs, templates=("a photo of a {}.",)):
    classes = ["cat", "dog", "car"]
    return build_defended(loaded, parse_defenses(specs), prompts=Prompts(tuple(templates)), ctx=BuildContext(Runtime(CPU), 4),
                          head=lambda model, prompts: zeroshot_head(model, classes, prompts, TensorCache(None)))


def test_prompt_templates_and_text_prefix_change_the_head(tiny_rn):
    defended = _zeroshot(tiny_rn, ["prompt:templates=an image of a {}.+a drawing of a {}.", "prompt:prefix=real"])
    assert defended.head_info["templates"] == ["an image of a real {}.", "a drawing of a real {}."]
    direct, _ = build_zeroshot_head(tiny_rn, ["cat", "dog", "car"], defended.head_info["templates"], TensorCache(None))
    assert torch.allclose(defended.classifier.head.class_embeddings, direct.class_embeddings)
    plain = _zeroshot(tiny_rn, [])
    assert not torch.allclose(plain.classifier.head.class_embeddings, direct.class_embeddings, atol=1e-4)
    with pytest.raises(UsageError, match=r"field 'templates'.*exactly once"):
        create_defense("prompt:templates=no placeholder")


def test_a_learned_prefix_file_is_placed_before_the_class_name(tiny_rn, tmp_path):
    path = save_prefix(tmp_path / "prefix.safetensors", PrefixResult(
        placeholder_prefix(tiny_rn), [], {"format": FILE_FORMAT, "model_fingerprint": tiny_rn.fingerprint()}))
    learned = _zeroshot(tiny_rn, [f"prompt:prefix={path}"])
    as_text = _zeroshot(tiny_rn, ["prompt:prefix=x"])  # the placeholder's own embedding is the word "x"
    assert learned.records[0]["learned_prefix_sha256"] and learned.head_info["learned_prefix_sha256"]
    assert torch.allclose(learned.classifier.head.class_embeddings, as_text.classifier.head.class_embeddings,
                          atol=1e-5)
    other = load_model("tiny-rn", device="cpu", seed=1)
    with pytest.raises(UsageError, match="was trained for model"):
        _zeroshot(other, [f"prompt:prefix={path}"])


# -- specs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, message", [
    ("abalte:units=layer4:1", r"field 'kind': unknown defense kind 'abalte': did you mean ablate"),
    ("ablate:unit=layer4:1", r"unknown field 'unit': did you mean units"),
    ("ablate:units=layer4", r"field 'units': neuron 'layer4' is not LAYER:INDEX"),
    ("ablate:units=layer4:1,mode=avg", r"field 'mode': 'avg' is not one of zero, mean"),
    ("ablate:units=layer4:1,mean_n=5", r"field 'mean_n': is read only with mode=mean"),
    ("input:blurr=1", r"unknown field 'blurr': did you mean blur"),
    ("input:blur=1,jpeg=50", r"give exactly one of the fields blur, downscale, jpeg, jpeg_range, resize_range"),
    ("input:jpeg=fifty", r"field 'jpeg': expected an integer"),
    ("prompt:prefix=missing.safetensors", r"field 'prefix': learned prefix file 'missing.safetensors' not found"),
    ("interpolate:alpha=0.5", r"field 'checkpoint' is required"),
    ("input:blur", r"'blur' is not KEY=VALUE"),
])
def test_bad_specs_are_one_line_naming_the_field(spec, message):
    with pytest.raises(UsageError, match=message) as error:
        create_defense(spec)
    assert "\n" not in str(error.value) and f"--defense '{spec}'" in str(error.value)


# -- sanity flags --------------------------------------------------------------------------------------


class _Noisy(nn.Module):
    """A classifier with a random forward pass (a randomised defense)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, pixels):
        # Noise on the logits, not the pixels: a random tiny model's logits barely move with its input.
        logits = self.inner(pixels)
        return logits + 0.1 * torch.randn_like(logits)


class _Masked(nn.Module):
    """JPEG without BPDA: the forward runs outside autograd, so no gradient reaches the pixels."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, pixels):
        return self.inner(jpeg_reencode(pixels, 50))


def test_sanity_flags_catch_random_forwards_masked_gradients_and_strong_transfer(tiny_rn):
    x, labels = _pixels(tiny_rn), torch.tensor([0, 1, 2, 3])
    plain = _plain(tiny_rn)
    assert sanity_flags(plain, x, labels)["flags"] == []
    assert sanity_flags(_defend(tiny_rn, ["input:jpeg=50"]).classifier, x, labels)["flags"] == []  # BPDA
    noisy = sanity_flags(_Noisy(plain), x, labels)
    assert noisy["flags"] == ["nondeterministic"] and noisy["nondeterministic"]["max_logit_diff"] > 0
    masked = sanity_flags(_Masked(plain), x, labels)
    assert masked["flags"] == ["zero_gradients"] and masked["zero_gradients"]["images_all_zero"] == 4
    flagged = sanity_flags(plain, x, labels, adaptive_accuracy=0.6, transfer_accuracy=0.4)
    assert flagged["flags"] == ["transfer_stronger"]
    assert sanity_flags(plain, x, labels, adaptive_accuracy=0.4, transfer_accuracy=0.6)["flags"] == []
    stages = [{"name": "pgd", "kind": "pgd", "eps": 0.01, "accuracy": 0.2},
              {"name": "pgd-t", "kind": "pgd", "eps": 0.01, "attack_on": "undefended", "accuracy": 0.1},
              {"name": "pgd-big-t", "kind": "pgd", "eps": 0.1, "attack_on": "undefended", "accuracy": 0.0}]
    assert [(p["adaptive"], p["transfer"], p["flag"]) for p in transfer_pairs(stages)] == [("pgd", "pgd-t", True)]


# -- transfer attacks ----------------------------------------------------------------------------------


def test_a_transfer_stage_attacks_the_undefended_model_and_an_adaptive_one_the_defended(tiny_rn):
    x, labels = _pixels(tiny_rn), torch.tensor([0, 1, 2, 3])
    plain, defended = _plain(tiny_rn), _defend(tiny_rn, ["input:blur=2"]).classifier
    config = PGDConfig(eps=8 / 255, step_size=2 / 255, steps=3)
    batch = Batch(x, labels, [0, 1, 2, 3], ["a", "b", "c", "d"])
    ctx = RunContext(defended, ["c0", "c1", "c2", "c3", "c4"], Runtime(CPU), seed=0, undefended=lambda: plain)
    on_plain = RunContext(plain, ctx.classnames, Runtime(CPU), seed=0)
    transfer = PGDStage("t", "clean", config, attack_on="undefended")
    adaptive = PGDStage("t", "clean", config)
    assert torch.equal(transfer.apply(x, batch, ctx).images, adaptive.apply(x, batch, on_plain).images)
    assert not torch.equal(adaptive.apply(x, batch, ctx).images, adaptive.apply(x, batch, on_plain).images)
    assert transfer.describe()["attack_on"] == "undefended" and "attack_on" not in adaptive.describe()


# -- the harness ---------------------------------------------------------------------------------------

SUITE = b"""
name = "defense-test"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "pgd"
kind = "pgd"
eps = "4/255"
step_size = "2/255"
steps = 2
[[stage]]
name = "pgd-transfer"
kind = "pgd"
eps = "4/255"
step_size = "2/255"
steps = 2
attack_on = "undefended"
[[defense]]
kind = "input"
jpeg = 50
"""


def _config(tmp_path, **changes) -> RunConfig:
    base = dict(model="tiny-rn", dataset="cifar10-sample", limit=10, batch_size=10, suite=None,
                cache_dir=str(tmp_path / "cache"), device="cpu")
    return RunConfig(**{**base, **changes})


def test_a_defended_run_records_its_defenses_and_keys_its_results_by_them(tmp_path):
    suite = parse_suite(SUITE)
    assert [d.kind for d in suite.defenses] == ["input"]
    session = Session.open(_config(tmp_path, defenses=["ablate:units=layer4:3"]))
    bare = session.undefended()
    assert bare.defenses == [] and bare.model is session.model and bare.dataset is session.dataset
    outcome = run_suite(session, suite, tmp_path / "run", progress=False, pictures=False)
    results = read_results(outcome.out_dir)
    assert [d["kind"] for d in results["defenses"]] == ["ablate", "input"]  # the session's, then the suite's
    assert results["defenses"][1]["bpda"] is True and results["config"]["defenses"] == ["ablate:units=layer4:3"]
    assert results["suite"]["defenses"] == ["input:jpeg=50"]
    stages = {s["name"]: s for s in results["stages"]}
    assert stages["pgd-transfer"]["attack_on"] == "undefended" and "attack_on" not in stages["pgd"]
    sanity = results["defense_sanity"]
    assert [(p["adaptive"], p["transfer"]) for p in sanity["transfer_stronger"]["pairs"]] == [("pgd", "pgd-transfer")]
    assert sanity["nondeterministic"]["flag"] is False and sanity["zero_gradients"]["flag"] is False
    defended = outcome.session
    assert results["config_hash"] == defended.run_key(suite.stages, suite.sha256)
    assert len({defended.run_key(suite.stages, suite.sha256), session.run_key(suite.stages, suite.sha256),
                bare.run_key(suite.stages, suite.sha256)}) == 3
    assert "defenses" not in bare.identity()  # undefended keys are what they were before defenses existed
    other = session.with_defenses(["input:jpeg=60"])
    assert other.run_key(suite.stages, suite.sha256) != defended.run_key(suite.stages, suite.sha256)
    entry_model = _model(results["model"], None, results["defenses"])
    assert entry_model["label"] == f"tiny-rn+defended-{defense_fingerprint(results['defenses'])[:8]}"
    assert entry_model["defense_sha256"] != _model(results["model"], None, [results["defenses"][0]])["defense_sha256"]
    validator = Validator(Boards(1, {}, (), ""))
    validator._model(entry_model)  # a defended model is a valid entry model ...
    with pytest.raises(EntryError, match="model.defense_sha256"):  # ... but not half of one
        validator._model({k: v for k, v in entry_model.items() if k != "defense_sha256"})


def test_a_suite_defense_table_round_trips_through_the_suite_writer():
    suite = parse_suite(SUITE)
    spec = spec_from_dict(suite_raw := {"name": "t", "stage": [{"name": "clean", "kind": "clean"}],
                                        "defense": [{"kind": "input", "blur": 1.5},
                                                    {"kind": "prompt", "templates": ["a {}.", "the {}."]}]})
    again = parse_suite(to_toml(spec.raw).encode())
    assert [d.spec for d in again.defenses] == ["input:blur=1.5", "prompt:templates=a {}.+the {}."]
    assert spec.raw["defense"] == suite_raw["defense"] and suite.describe()["defenses"] == ["input:jpeg=50"]
    one = parse_suite(b'name = "t"\n[defense]\nkind = "input"\ndownscale = 2\n[[stage]]\nname = "clean"\nkind = "clean"\n')
    assert [d.spec for d in one.defenses] == ["input:downscale=2"]
    with pytest.raises(UsageError, match=r"suite t: defense\[1\]: unknown field 'blurr': did you mean blur"):
        parse_suite(b'name = "t"\n[[defense]]\nkind = "input"\nblur = 1\n[[defense]]\nkind = "input"\nblurr = 1\n'
                    b'[[stage]]\nname = "clean"\nkind = "clean"\n')


def test_cli_run_with_defenses_end_to_end_and_mean_images_of_a_neurons_analysis(tmp_path, capsys, cifar10_jpeg_root):
    run = tmp_path / "run"
    argv = ["run", "--model", "tiny-rn", "--limit", "10", "--batch-size", "10", "--suite", "none", "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    # the units are chosen on train images (another data set's folder, its train split), scored on the sample
    assert main([*argv, "--out", str(run), "--dataset", "cifar10-jpeg", "--data-root", str(cifar10_jpeg_root),
                 "--split", "train"]) == 0
    neurons = _neurons_json(tmp_path / "neurons.json", run, ref_limit=6)
    defended = tmp_path / "defended"
    assert main([*argv, "--out", str(defended), "--defense", "input:blur=1",
                 "--defense", f"ablate:from={neurons},stage=typo,k=2,mode=mean"]) == 0
    results = read_results(defended)
    blur, ablation = results["defenses"]
    assert blur["sigma"] == 1.0 and ablation["units"] == ["layer4:9", "layer4:4"]
    config = RunConfig.from_record(read_results(run)["config"])
    data = load_data(config, load_model("tiny-rn"))
    chosen = stratified_subset(data.labels, 6, 3)  # the analysis' reference: its ref_limit and seed
    assert ablation["mean_images"]["source"] == "neurons-reference" and ablation["mean_images"]["n"] == 6
    assert ablation["mean_images"]["sample_hash"] == sample_hash([data.sample_ids[i] for i in chosen])
    assert results["config_hash"] != read_results(run)["config_hash"]
    assert main([*argv, "--out", str(tmp_path / "bad"), "--defense", "input:sigma=1"]) == 2
    assert "unknown field 'sigma'" in capsys.readouterr().err
    assert main(["list", "defenses"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {kind} " in listed for kind in ("ablate", "prompt", "interpolate", "input"))


def test_a_suites_defense_reads_its_files_from_the_suite_folder_and_the_command_line_from_the_working_folder(
        tmp_path, monkeypatch):
    from typobench.suites import read_suite

    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "units.txt").write_text("layer4:3\n")
    (suites / "ablated.toml").write_text('name = "ablated"\n[[stage]]\nname = "clean"\nkind = "clean"\n'
                                         '[defense]\nkind = "ablate"\nfile = "units.txt"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    suite = read_suite(str(suites / "ablated.toml"))
    assert suite.defenses[0].parameters()["units"] == ["layer4:3"]
    assert suite.defenses[0].spec == "ablate:file=units.txt"  # as written: the suite's sha256 says where
    with pytest.raises(UsageError, match=r"field 'file': '.*units.txt' not found"):
        create_defense("ablate:file=units.txt")  # on the command line: relative to the working folder
