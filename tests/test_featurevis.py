"""Feature visualization, faceted feature visualization and text feature visualization (issue 18, items 1-3),
on the built-in random towers (tiny-rn: ResNet, tiny-vit: ViT) with few steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from typobench.core.errors import UsageError
from typobench.models import load_model
from typobench.models.classifier import ImageClassifier
from typobench.neurons.featurevis.facets import faceted, fit_facet, text_facet, written_on
from typobench.neurons.featurevis.layers import facet_layer, layer_space, tower_layers
from typobench.neurons.featurevis.measure import excitation_ratios, natural_percentiles, summary
from typobench.neurons.featurevis.objectives import Captured, channel, direction, diversity, neuron, sum_of
from typobench.neurons.featurevis.optimise import Settings, objective_values, visualize
from typobench.neurons.featurevis.param import make_image
from typobench.neurons.featurevis.textvis import (agreement, neuron_directions, text_side_scores, top_words,
                                                  word_embeddings)
from typobench.neurons.featurevis.transforms import NO_ROBUSTNESS, Robustness, transform
from typobench.models.units import capture, find_layers

TOWERS = {"tiny-rn": ("layer4", 64), "tiny-vit": ("resblocks.1.mlp", 32)}


@pytest.fixture(scope="module", params=sorted(TOWERS))
def tower(request):
    loaded = load_model(request.param, device="cpu")
    torch.manual_seed(0)
    classifier = ImageClassifier.of(loaded, nn.Linear(32, 5))
    return request.param, classifier, loaded


def _photos(n: int, side: int, seed: int) -> torch.Tensor:
    """Smooth random colour fields [n, 3, side, side] in [0, 1]: 'photos' without any writing."""
    coarse = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)


def _captured(classifier, names, images):
    space = layer_space(classifier, names)
    with torch.no_grad(), capture(space) as store:
        classifier(images)
    return Captured({layer.name: layer for layer in space.layers}, dict(store))


# -- parameterisations and transformations ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fourier", "pixel"])
def test_images_are_unit_range_pixels_of_the_asked_shape_and_seeded(kind):
    a = make_image(kind, 3, 24, torch.Generator().manual_seed(1))
    b = make_image(kind, 3, 24, torch.Generator().manual_seed(1))
    c = make_image(kind, 3, 24, torch.Generator().manual_seed(2))
    pixels = a()
    assert pixels.shape == (3, 3, 24, 24) and pixels.min() >= 0 and pixels.max() <= 1
    assert torch.equal(pixels, b()) and not torch.equal(pixels, c())
    with pytest.raises(UsageError, match="parameterisation"):
        make_image("wavelet", 1, 8, torch.Generator())


def test_fourier_image_is_smoother_than_pixels_at_the_same_spectrum_energy():
    """1/f scaling: neighbouring pixels of a Fourier image are far more alike than those of a pixel image."""
    def roughness(kind):
        image = make_image(kind, 4, 32, torch.Generator().manual_seed(0))().detach()
        centred = image - image.mean((2, 3), keepdim=True)
        return float((centred[..., 1:] - centred[..., :-1]).pow(2).mean() / centred.pow(2).mean())
    assert roughness("fourier") < 0.5 * roughness("pixel")


def test_transforms_keep_the_size_are_seeded_and_identity_without_robustness():
    images = _photos(2, 32, 0)
    one = transform(images, Robustness(), torch.Generator().manual_seed(3))
    two = transform(images, Robustness(), torch.Generator().manual_seed(3))
    assert one.shape == images.shape and torch.equal(one, two) and not torch.allclose(one, images)
    assert torch.equal(transform(images, NO_ROBUSTNESS, torch.Generator()), images)
    still = Robustness(pad=4, jitter=0, scales=(1.0,), angles=(0.0,))  # pad then read the centre back
    assert torch.allclose(transform(images, still, torch.Generator()), images, atol=1e-5)


# -- objectives ---------------------------------------------------------------------------------------------


def test_layers_use_the_neurons_analysis_naming(tower):
    name, classifier, _ = tower
    layers = tower_layers(classifier)
    analysed = find_layers(classifier).layers[-1]
    assert list(layers)[-1] == analysed.name == TOWERS[name][0] and layers[analysed.name].module is analysed.module
    assert facet_layer(classifier) == list(layers)[-2]
    with pytest.raises(UsageError, match="not in this tower"):
        layer_space(classifier, ["layer9"])


def test_objectives_read_positions_channels_directions_and_combine(tower):
    name, classifier, _ = tower
    layer, side = TOWERS[name]
    captured = _captured(classifier, [layer], _photos(3, side, 1))
    units = captured.units(layer)  # [B, P, U]
    assert torch.allclose(channel(f"{layer}:5")(captured), units[:, :, 5].mean(1))
    assert torch.allclose(neuron(f"{layer}:5", position=2)(captured), units[:, 2, 5])
    onehot = torch.zeros(units.shape[-1])
    onehot[5] = 1.0
    assert torch.allclose(direction(layer, onehot)(captured), channel(f"{layer}:5")(captured))
    both = channel(f"{layer}:5") - 2 * channel(f"{layer}:7")
    assert torch.allclose(both(captured), units[:, :, 5].mean(1) - 2 * units[:, :, 7].mean(1))
    assert sum_of([channel(f"{layer}:5"), neuron(f"{layer}:7")]).layers == (layer,)
    with pytest.raises(UsageError, match="units"):
        channel(f"{layer}:99999")(captured)


def test_diversity_is_minus_one_for_identical_images_and_higher_for_different_ones(tower):
    name, classifier, _ = tower
    layer, side = TOWERS[name]
    same = _captured(classifier, [layer], _photos(1, side, 2).expand(3, -1, -1, -1))
    different = _captured(classifier, [layer], _photos(3, side, 2))
    assert torch.allclose(diversity(layer)(same), torch.full((3,), -1.0), atol=1e-5)
    assert diversity(layer)(different).mean() > -1.0 + 1e-4


# -- the optimisation loop ----------------------------------------------------------------------------------


def test_visualization_is_deterministic_from_the_seed(tower):
    name, classifier, _ = tower
    objective = channel(f"{TOWERS[name][0]}:3") + 0.1 * diversity(TOWERS[name][0])
    first = visualize(classifier, objective, Settings(steps=3, batch=2, seed=7))
    again = visualize(classifier, objective, Settings(steps=3, batch=2, seed=7))
    other = visualize(classifier, objective, Settings(steps=3, batch=2, seed=8))
    assert torch.equal(first.images, again.images) and first.history == again.history
    assert not torch.equal(first.images, other.images)
    side = TOWERS[name][1]
    assert first.images.shape == (2, 3, side, side) and 0 <= first.images.min() and first.images.max() <= 1


@pytest.mark.parametrize("param,robust", [("fourier", True), ("fourier", False), ("pixel", False)])
def test_the_objective_increases_during_optimisation(tower, param, robust):
    """Pixels under random transformations need many steps to gain (they overfit one alignment): only
    Fourier images are held to gaining within a few steps under transformations."""
    name, classifier, _ = tower
    objective = channel(f"{TOWERS[name][0]}:3")
    settings = Settings(steps=12, lr=0.05, param=param, seed=0, robustness=Robustness() if robust else NO_ROBUSTNESS)
    start = make_image(param, 1, TOWERS[name][1], torch.Generator().manual_seed(0))().detach()
    result = visualize(classifier, objective, settings)
    assert float(result.final[0]) > float(objective_values(classifier, objective, start)[0])
    assert len(result.history) == 12 and result.describe()["param"] == param


# -- faceted feature visualization --------------------------------------------------------------------------


def test_written_on_draws_words_on_the_photos_seeded():
    photos = _photos(4, 64, 3)
    written = written_on(photos, ["stop", "zebra"], seed=1)
    assert written.shape == photos.shape and torch.equal(written, written_on(photos, ["stop", "zebra"], seed=1))
    changed = (written - photos).abs().amax(1) > 0.05
    assert 0.01 < changed.float().mean() < 0.5  # a sticker, not the whole image


def test_text_facet_separates_written_from_clean_photos(tower):
    name, classifier, _ = tower
    facet = text_facet(classifier, _photos(24, TOWERS[name][1], 4))
    assert facet.layer == facet_layer(classifier) and facet.counts == (24, 24)
    assert facet.accuracy >= 0.9 and facet.weight.shape == (tower_layers(classifier)[facet.layer].units,)
    with pytest.raises(UsageError, match="at least 2"):
        fit_facet(classifier, facet.layer, _photos(1, TOWERS[name][1], 0), _photos(3, TOWERS[name][1], 0), name="x")


def test_faceted_objective_adds_weights_dot_attribution_and_optimises(tower):
    name, classifier, _ = tower
    layer, side = TOWERS[name]
    facet = text_facet(classifier, _photos(8, side, 5))
    plain = channel(f"{layer}:3")
    images = _photos(2, side, 6)
    assert torch.allclose(objective_values(classifier, faceted(plain, facet, 0.0), images), objective_values(classifier, plain, images))
    strong = objective_values(classifier, faceted(plain, facet, 1e3), images)
    assert not torch.allclose(strong, objective_values(classifier, plain, images))
    objective = faceted(plain, facet, 1.0)
    start = make_image("fourier", 1, side, torch.Generator().manual_seed(1))().detach()
    result = visualize(classifier, objective, Settings(steps=6, lr=0.01, seed=1, robustness=NO_ROBUSTNESS))
    assert float(result.final[0]) > float(objective_values(classifier, objective, start)[0])
    assert "text facet" in result.objective


# -- text feature visualization -----------------------------------------------------------------------------


class _PlantedTower(nn.Module):
    """``layer4`` (conv + ReLU, positive activations) averaged over positions, then a linear projection."""

    def __init__(self, projection: torch.Tensor):
        super().__init__()
        units = projection.shape[1]
        self.layer4 = nn.Sequential(nn.Conv2d(3, units, 3, padding=1), nn.ReLU())
        with torch.no_grad():
            self.layer4[0].weight.uniform_(0.0, 0.1)
            self.layer4[0].bias.fill_(0.1)
        self.projection = nn.Parameter(projection)

    def forward(self, pixels):
        return self.layer4(pixels).mean((2, 3)) @ self.projection.T


class _Planted(nn.Module):
    def __init__(self, projection):
        super().__init__()
        self.visual = _PlantedTower(projection)

    def features(self, pixels):
        return self.visual(pixels)

    forward = features


def test_text_side_finds_the_word_planted_in_a_neurons_direction():
    loaded = load_model("tiny-rn", device="cpu")
    words = ["zebra", "piano", "river", "ladder", "candle", "ocean", "pencil", "garden"]
    embeddings = word_embeddings(loaded.model, loaded.tokenizer, words)
    assert embeddings.shape == (8, 32) and torch.allclose(embeddings.norm(dim=1), torch.ones(8))
    projection = 0.05 * torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    projection[:, 2] = embeddings[words.index("ladder")]  # unit 2 writes "ladder" into the joint space
    projection[:, 4] = embeddings[words.index("ocean")]
    model = _Planted(projection)
    space = find_layers(model)
    directions = neuron_directions(model, space, _photos(5, 16, 7), batch_size=2)
    assert directions.shape == (6, 32)
    scores = text_side_scores(directions, embeddings)
    assert top_words(scores, words, 2, k=1)[0][0] == "ladder" and top_words(scores, words, 4, k=1)[0][0] == "ocean"
    assert scores[words.index("ladder"), 2] > 0.99


def test_text_side_directions_run_on_both_towers(tower):
    name, classifier, loaded = tower
    space = find_layers(classifier)
    directions = neuron_directions(classifier, space, _photos(2, TOWERS[name][1], 8))
    assert directions.shape == (space.total, 32) and directions.abs().sum() > 0


def test_agreement_between_text_and_pixel_sides():
    scores = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    same = agreement(scores, scores, k=5)
    assert torch.allclose(same.spearman, torch.ones(3)) and torch.equal(same.overlap, torch.ones(3))
    flipped = agreement(scores, -scores, k=5)
    assert torch.allclose(flipped.spearman, -torch.ones(3)) and torch.equal(flipped.overlap, torch.zeros(3))
    with pytest.raises(UsageError, match="same words"):
        agreement(scores, scores[:10])


# -- measurement --------------------------------------------------------------------------------------------


def test_excitation_ratio_divides_the_visualization_by_the_natural_percentile(tower):
    name, classifier, _ = tower
    layer, side = TOWERS[name]
    natural = _photos(20, side, 9)
    neurons = [f"{layer}:3", f"{layer}:4"]
    levels = natural_percentiles(classifier, neurons, natural, q=100.0)
    captured = _captured(classifier, [layer], natural)
    assert torch.allclose(levels, captured.units(layer)[:, :, [3, 4]].mean(1).amax(0), rtol=1e-5, atol=1e-7)
    rows = excitation_ratios(classifier, neurons, natural, Settings(steps=2), q=99.9)
    assert [r.neuron for r in rows] == neurons
    assert all(r.ratio == pytest.approx(r.visualized / r.natural) for r in rows if r.natural > 0)
    assert summary(rows)["neurons"] == 2


# -- redirected ReLU gradients ------------------------------------------------------------------------------


def test_redirected_relu_keeps_values_and_ordinary_gradients_and_redirects_dead_ones():
    from typobench.neurons.featurevis.relu import RedirectedReLU

    x = torch.tensor([[-1.0, -2.0, 0.5], [-1.0, 2.0, -0.2]], requires_grad=True)
    y = RedirectedReLU()(x)
    assert torch.equal(y, torch.relu(x))
    grad, = torch.autograd.grad(-(y[:, 0] + y[:, 1]).sum(), x)  # a loss that wants units 0 and 1 up
    # Row 0: no ordinary gradient anywhere (units 0, 1 are off), so it passes as for the identity; row 1 has
    # one (unit 1 is on), so it is the ordinary ReLU gradient.
    assert torch.equal(grad, torch.tensor([[-1.0, -1.0, 0.0], [0.0, -1.0, 0.0]]))
    down, = torch.autograd.grad(RedirectedReLU()(x)[0, 0], x)  # a loss pushing an off unit further down: not passed
    assert torch.equal(down, torch.zeros_like(x))


def test_a_unit_off_on_the_start_image_moves_only_with_redirected_relus(tower):
    from typobench.neurons.featurevis.relu import redirected_relus

    name, classifier, _ = tower
    if name != "tiny-rn":
        with redirected_relus(classifier) as swapped:
            assert swapped == 0  # a ViT has no ReLU
        return
    layer, side = TOWERS[name]
    start = make_image("fourier", 1, side, torch.Generator().manual_seed(0))().detach()
    captured = _captured(classifier, [layer], start)
    dead = torch.nonzero(captured.units(layer)[0].amax(0) <= 0).view(-1)[:4].tolist()
    assert len(dead) == 4
    kept, moved = [], []
    for unit in dead:
        objective = channel(f"{layer}:{unit}")
        kept.append(float(visualize(classifier, objective, Settings(steps=10, seed=0, redirect_relu=False)).final[0]))
        moved.append(float(visualize(classifier, objective, Settings(steps=10, seed=0)).final[0]))
    assert kept == [0.0] * 4 and max(moved) > 0.0, moved  # without a gradient a dead unit never moves
    relus = [m for m in classifier.modules() if type(m) is nn.ReLU]
    with redirected_relus(classifier) as swapped:
        assert swapped == len(relus) > 0 and not any(type(m) is nn.ReLU for m in classifier.modules())
    assert [m for m in classifier.modules() if type(m) is nn.ReLU] == relus  # put back
