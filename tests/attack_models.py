"""A tiny seeded classifier and data for the Square and FAB tests (CPU, well under a second to build)."""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


K = 10  # classes, so FAB-T has its 9 target classes
SIDE = 32  # pixels: small enough for cheap queries, large enough that window edge effects stay small


class TinyNet(nn.Module):
    """A [N,3,32,32] -> [N,K] classifier in [0,1] pixel space (normalises inside forward, like the CLIP wrappers)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32, K)

    def forward(self, x: Tensor) -> Tensor:
        x = (x - 0.5) / 0.25
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


class Rounded(nn.Module):
    """``model`` on the input rounded to 8 bits: piecewise constant, so its input gradient is zero everywhere."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(torch.round(x * 255) / 255)


def synthetic(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """[n,3,32,32] images in [0,1]: class c is a coloured wave pattern of its own frequency and direction, plus
    noise; [n] labels."""
    y = torch.arange(n) % K
    yy, xx = torch.meshgrid(torch.arange(float(SIDE)), torch.arange(float(SIDE)), indexing="ij")
    angle = y.float()[:, None, None] * (torch.pi / K)
    wave = torch.sin((xx * torch.cos(angle) + yy * torch.sin(angle)) * (0.6 + 0.1 * (y.float()[:, None, None] % 3)))
    colour = torch.stack([(y % 3 == i).float() for i in range(3)], dim=1)[:, :, None, None] * 0.5 + 0.5
    x = 0.5 + 0.15 * wave[:, None] * colour + 0.06 * torch.randn(n, 3, SIDE, SIDE, generator=g)
    return x.clamp(0, 1), y


@functools.lru_cache(maxsize=1)
def trained() -> tuple[TinyNet, Tensor, Tensor]:
    """A TinyNet trained for 150 Adam steps on 512 images (eval mode), and 64 test images it gets right."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x_train, y_train = synthetic(512, g)
    for _ in range(150):
        idx = torch.randint(0, 512, (64,), generator=g)
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = synthetic(96, g)
    with torch.no_grad():
        right = model(x).argmax(1) == y
    return model, x[right][:64], y[right][:64]


class Recorder:
    """Wraps a model and counts the images of every forward pass it is called with."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.rows = 0

    def __call__(self, x: Tensor) -> Tensor:
        self.rows += x.shape[0]
        return self.model(x)


def reference_interval(a: float, b: float, n: int) -> float:
    """Half-width of the 95% interval of the difference of two robust accuracies measured on ``n`` images each
    (normal approximation of two binomial proportions, 1.96 standard errors, plus one image for the
    discreteness): two correct implementations of one attack differ by less, 19 times in 20."""
    return 1.96 * ((a * (1 - a) + b * (1 - b)) / n) ** 0.5 + 1 / n


def robust_accuracy(model: nn.Module, adv: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return (model(adv).argmax(1) == y).float().mean().item()


STAGE_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def stage_context():
    """A RunContext on the tiny random CLIP (``tiny-rn``) with ten CIFAR-10 class names, and a batch of 4 images."""
    from typobench.core.runtime import Runtime
    from typobench.heads import ZeroShotHead
    from typobench.models import load_model
    from typobench.models.classifier import ImageClassifier
    from typobench.stages.base import Batch, RunContext

    loaded = load_model("tiny-rn")
    g = torch.Generator().manual_seed(1)
    embeddings = F.normalize(torch.randn(len(STAGE_CLASSES), 32, generator=g), dim=-1)
    head = ZeroShotHead.from_clip(loaded.model, embeddings)
    classifier = ImageClassifier.of(loaded, head)
    ctx = RunContext(classifier=classifier, classnames=STAGE_CLASSES, runtime=Runtime(torch.device("cpu")), seed=0)
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        labels = classifier(images).argmax(1)  # labels the model gets right, so the attack has work to do
    return ctx, Batch(images, labels, list(range(4)), [f"id{i}" for i in range(4)])
