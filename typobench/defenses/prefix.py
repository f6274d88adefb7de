"""Defense-Prefix (Azuma & Matsui 2023): a learned token embedding before the class name in the zero-shot prompts.

Prompts are written with a placeholder word where the prefix goes (``"a photo of a x cat."``). While they
are encoded, a forward hook on the text tower's token embedding puts the learned embedding [T, width] at
the placeholder's positions; everything after it (positional embedding, causal and pad masks, transformer,
final norm, pooling at the end-of-text token, projection) is open_clip's own ``encode_text``, for both
layouts (``CLIP`` with the tower inline, ``CustomTextCLIP`` with ``model.text``). With the placeholder's own
embedding as the prefix the features are exactly ``encode_text``'s.

Training keeps the model frozen and fits only the prefix. Its loss is the paper's two terms: typographic
images (a text stage, e.g. the suite's ``random-wrong-label``, writes a wrong class name on each *train*
image) classified towards their true class, plus a term that keeps clean predictions, here
KL(plain-prompt predictions || prefixed-prompt predictions) on the same clean images.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

from typobench.core.atomic import write_bytes_atomic
from typobench.core.errors import UsageError
from typobench.core.hashing import bytes_sha256
from typobench.core.options import option
from typobench.core.runtime import Runtime
from typobench.data import ImageDataset, sample_hash, stack_images
from typobench.heads.zeroshot import ZeroShotHead, average_class_embeddings, zeroshot_class_embeddings, zeroshot_logits
from typobench.models import LoadedModel
from typobench.models.classifier import ImageClassifier
from typobench.stages.base import Batch, RunContext, Stage
from typobench.typographic import derive_seed

PLACEHOLDER = "x"  # CoOp's placeholder: one token in CLIP's BPE, its embedding replaced by the prefix's
FILE_FORMAT = "typobench-defense-prefix"
FILE_VERSION = "1"
_CHUNK = 256  # images per pass when drawing attacks and extracting features


def token_embedding_of(clip_model: nn.Module) -> nn.Embedding:
    """The text tower's token embedding (``model.token_embedding`` or ``model.text.token_embedding``)."""
    for owner in (clip_model, getattr(clip_model, "text", None)):
        embedding = getattr(owner, "token_embedding", None)
        if isinstance(embedding, nn.Embedding):
            return embedding
    raise UsageError(f"model {type(clip_model).__name__} has no token embedding in its text tower (a Hugging Face "
                     "text tower?): a learned prompt prefix needs an open_clip CLIP or CustomTextCLIP text tower")


def placeholder_token_id(tokenizer: Callable[[list[str]], Tensor], word: str = PLACEHOLDER) -> int:
    """The one token id ``word`` becomes (start, end and padding tokens, those of ``""``, left out)."""
    special = set(tokenizer([""])[0].tolist())
    ids = [t for t in tokenizer([word])[0].tolist() if t not in special]
    if len(ids) != 1:
        raise UsageError(f"prefix placeholder {word!r} is {len(ids)} tokens for this tokenizer: pick a one-token word")
    return ids[0]


def slot_text(tokens: int = 1) -> str:
    """The text standing for a prefix of ``tokens`` embeddings, e.g. ``"x"``: write it where the prefix goes."""
    return " ".join([PLACEHOLDER] * tokens)


def _rows(prefix: Tensor) -> Tensor:
    """A prefix as rows [T, width]: one embedding [width] is one row."""
    return prefix.unsqueeze(0) if prefix.dim() == 1 else prefix


@contextmanager
def _prefix_inserted(embedding: nn.Embedding, slots: Tensor, rows: Tensor) -> Iterator[None]:
    """While active, ``embedding``'s output [N, L, width] has ``rows`` [T, width] at the True positions of
    ``slots`` [N, L] (T per text, in order); gradients reach ``rows``."""
    def insert(_module: nn.Module, _inputs: tuple, output: Tensor) -> Tensor:
        source = rows.to(output.dtype).repeat(output.shape[0], 1)  # row-major order matches masked_scatter's
        return output.masked_scatter(slots.unsqueeze(-1), source)

    handle = embedding.register_forward_hook(insert)
    try:
        yield
    finally:
        handle.remove()


def prefixed_text_features(clip_model: nn.Module, tokenizer: Callable[[list[str]], Tensor],
                           texts_with_slot: Sequence[str], prefix: Tensor) -> Tensor:
    """Text features [N, D] (unnormalised, like ``encode_text``) of texts that each contain ``slot_text(T)``
    once, the placeholder embeddings replaced by ``prefix`` [width] or [T, width]."""
    embedding = token_embedding_of(clip_model)
    rows = _rows(prefix)
    if rows.dim() != 2 or rows.shape[-1] != embedding.embedding_dim:
        raise UsageError(f"prefix of shape {tuple(prefix.shape)} does not fit this text tower (token width "
                         f"{embedding.embedding_dim}): use a prefix trained for this model")
    tokens = tokenizer(list(texts_with_slot)).to(embedding.weight.device)
    slots = tokens == placeholder_token_id(tokenizer)
    counts = slots.sum(dim=1)
    if bool((counts != rows.shape[0]).any()):
        bad = int((counts != rows.shape[0]).nonzero()[0])
        raise UsageError(f"prompt {texts_with_slot[bad]!r} holds the placeholder {PLACEHOLDER!r} {int(counts[bad])} "
                         f"times, not {rows.shape[0]} (a word {PLACEHOLDER!r} of its own, or cut at the context "
                         "length?): shorten the template or rename the class")
    with _prefix_inserted(embedding, slots, rows.to(embedding.weight.device)):
        return clip_model.encode_text(tokens)


def prefixed_zeroshot_weights(loaded: LoadedModel, classnames: Sequence[str], templates: Sequence[str],
                              prefix: Tensor, *, batch_size: int = 256) -> Tensor:
    """Class embeddings [C, D] (the layout of ``zeroshot_class_embeddings`` and ``ZeroShotHead``) of prompts
    with the prefix just before the class name; built like the plain ones, gradients reach ``prefix``."""
    named = [f"{slot_text(_rows(prefix).shape[0])} {name}" for name in classnames]
    return average_class_embeddings(
        lambda texts: prefixed_text_features(loaded.model, loaded.tokenizer, texts, prefix),
        named, templates, batch_size=batch_size)


def placeholder_prefix(loaded: LoadedModel, tokens: int = 1) -> Tensor:
    """The placeholder's own embedding, ``tokens`` times [T, width]: where training starts, and the prefix
    whose features equal plain ``encode_text`` of the same prompts."""
    row = token_embedding_of(loaded.model).weight[placeholder_token_id(loaded.tokenizer)]
    return row.detach().float().cpu().repeat(tokens, 1)


@dataclass
class PrefixResult:
    """A learned prefix [T, width] (float32, CPU), the loss at each step, and what it was made from (strings)."""

    prefix: Tensor
    losses: list[float]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return int(self.prefix.shape[0])


def typographic_images(attack: Stage, classifier: nn.Module, images: Tensor, labels: Tensor,
                       sample_ids: Sequence[str], classnames: Sequence[str], seed: int) -> Tensor:
    """``attack``'s output [N,3,H,W] for clean ``images`` [N,3,H,W] in [0,1], drawn exactly as a run's stage of
    that name with this seed draws it (per sample id); ``classifier`` is what a stage that attacks one uses."""
    if attack.source != "clean" or not attack.changes_images:
        raise UsageError(f"stage '{attack.name}' ({attack.kind}, reading '{attack.source}') cannot make training "
                         "images: name a stage that changes the clean images, such as 'random-wrong-label'")
    attack.check(list(classnames), "train-prefix")
    context = RunContext(classifier=classifier, classnames=list(classnames), runtime=Runtime(images.device), seed=seed)
    chunks = []
    for start in range(0, len(images), _CHUNK):
        end = min(start + _CHUNK, len(images))
        batch = Batch(images[start:end], labels[start:end], list(range(start, end)), list(sample_ids[start:end]))
        chunks.append(attack.apply(batch.images, batch, context).images.detach())
    return torch.cat(chunks)


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """No weight of ``model`` takes a gradient inside the block (the prefix alone is trained)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


@dataclass
class _Objective:
    """The training loss of a prefix on image features: CE(typographic -> true class) + keep · KL(clean)."""

    loaded: LoadedModel
    classnames: list[str]
    templates: list[str]
    clean: Tensor  # [N, D] image features of the clean train images
    typographic: Tensor  # [N, D] of the same images with a word written on them
    labels: Tensor  # [N]
    plain_log_probs: Tensor  # [N, C] clean predictions with the plain prompts, kept by the second term
    head: ZeroShotHead  # the model's own temperature (and bias)
    keep_weight: float

    def __call__(self, prefix: Tensor, rows: Tensor | slice = slice(None)) -> Tensor:
        weights = prefixed_zeroshot_weights(self.loaded, self.classnames, self.templates, prefix)
        logits = lambda features: zeroshot_logits(features, weights, self.head.logit_scale, self.head.logit_bias)
        defense = F.cross_entropy(logits(self.typographic[rows]), self.labels[rows])
        clean_log_probs = F.log_softmax(logits(self.clean[rows]), dim=-1)
        keep = F.kl_div(clean_log_probs, self.plain_log_probs[rows], log_target=True, reduction="batchmean")
        return defense + self.keep_weight * keep


@torch.no_grad()
def _objective(loaded: LoadedModel, images: Tensor, labels: Tensor, sample_ids: Sequence[str], classnames: list[str],
               templates: list[str], attack: Stage, seed: int, keep_weight: float) -> _Objective:
    """Draw the typographic images once, and extract clean and typographic features once: the image tower is
    frozen, so each step runs the text tower only."""
    plain = zeroshot_class_embeddings(loaded.model, loaded.tokenizer, classnames, templates)
    head = ZeroShotHead.from_clip(loaded.model, plain)
    classifier = ImageClassifier.of(loaded, head)
    written = typographic_images(attack, classifier, images, labels, sample_ids, classnames, seed)
    features = lambda pixels: torch.cat([classifier.features(pixels[s:s + _CHUNK]).float()
                                         for s in range(0, len(pixels), _CHUNK)])
    clean = features(images)
    return _Objective(loaded, classnames, templates, clean, features(written), labels,
                      F.log_softmax(head(clean), dim=-1), head, keep_weight)


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


@dataclass
class PrefixTraining:
    """How a prefix is learned (``typobench defense train-prefix``'s training flags, declared once)."""

    steps: int = option(300, "Adam steps", minimum=1, group="training")
    lr: float = option(0.01, "Adam learning rate", check=_positive, group="training")
    tokens: int = option(1, "prefix length in tokens (1: as in the paper)", minimum=1, group="training")
    keep_weight: float = option(1.0, "weight of the term that keeps clean predictions (0: the typographic loss only)",
                                minimum=0, group="training")


def train_prefix(loaded: LoadedModel, images: Tensor, labels: Tensor, sample_ids: Sequence[str],
                 classnames: Sequence[str], templates: Sequence[str], *, attack: Stage, steps: int = 300,
                 lr: float = 0.01, seed: int = 0, tokens: int = 1, batch_size: int = 256,
                 keep_weight: float = 1.0) -> PrefixResult:
    """Learn a prefix [tokens, width] on train ``images`` [N,3,H,W] in [0,1] with ``labels`` [N] and their
    ``sample_ids``: Adam over ``steps`` minibatches of ``batch_size``, from the placeholder's own embedding.
    Deterministic from ``seed`` (the attack's draws and the minibatch order) on one device and thread count (float
    sums in another order drift apart over the steps); the model is left unchanged."""
    if steps < 1 or lr <= 0 or tokens < 1 or batch_size < 1 or keep_weight < 0:
        raise UsageError(f"train-prefix needs steps >= 1, lr > 0, tokens >= 1, batch size >= 1, keep weight >= 0; "
                         f"got {steps}, {lr}, {tokens}, {batch_size}, {keep_weight}")
    if not len(images) == len(labels) == len(sample_ids) or len(images) == 0:
        raise UsageError(f"train-prefix needs as many labels and sample ids as images (>0): got {len(images)} images, "
                         f"{len(labels)} labels, {len(sample_ids)} ids")
    device = loaded.device
    classnames, templates = list(classnames), list(templates)
    with _frozen(loaded.model):
        objective = _objective(loaded, images.to(device), labels.to(device), sample_ids, classnames, templates,
                               attack, seed, keep_weight)
        prefix = placeholder_prefix(loaded, tokens).to(device).requires_grad_(True)
        optimizer = torch.optim.Adam([prefix], lr=lr)
        order = torch.Generator().manual_seed(derive_seed(seed, "defense-prefix", "minibatches"))
        losses = []
        with torch.no_grad():
            initial = float(objective(prefix))
        for _ in range(steps):
            rows = torch.randperm(len(images), generator=order)[:batch_size].to(device)
            loss = objective(prefix, rows)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        with torch.no_grad():
            final = float(objective(prefix))
    metadata = {
        "format": FILE_FORMAT, "version": FILE_VERSION, "model_fingerprint": loaded.fingerprint(),
        "model_label": loaded.spec.label, "classnames": json.dumps(classnames),
        "classnames_sha256": bytes_sha256(json.dumps(classnames).encode()), "templates": json.dumps(templates),
        "attack": json.dumps(attack.describe(), sort_keys=True), "steps": str(steps), "lr": repr(lr),
        "seed": str(seed), "tokens": str(tokens), "batch_size": str(batch_size), "keep_weight": repr(keep_weight),
        "placeholder": PLACEHOLDER, "train_count": str(len(images)), "train_sample_hash": sample_hash(sample_ids),
        "initial_loss": repr(initial), "final_loss": repr(final),
    }
    return PrefixResult(prefix.detach().float().cpu(), losses, metadata)


def dataset_tensors(dataset: ImageDataset) -> tuple[Tensor, Tensor]:
    """Every image of ``dataset`` through its transform [N,3,H,W] and the labels [N] (a train subset fits)."""
    if len(dataset) == 0:
        raise UsageError(f"data set '{dataset.name}' ({dataset.split}) has no images to train a prefix on")
    return stack_images(dataset)


def train_prefix_on_dataset(loaded: LoadedModel, dataset: ImageDataset, *, attack: Stage,
                            templates: Sequence[str] | None = None, **options) -> PrefixResult:
    """:func:`train_prefix` on every image of ``dataset`` (its templates unless given); the data set's name and
    split join the metadata, so a prefix says what it was chosen on."""
    images, labels = dataset_tensors(dataset)
    result = train_prefix(loaded, images, labels, dataset.sample_ids, dataset.classnames,
                          dataset.templates if templates is None else templates, attack=attack, **options)
    result.metadata.update(dataset=dataset.name, split=dataset.split)
    return result


def save_prefix(path: str | Path, result: PrefixResult) -> Path:
    """Write ``result`` as a small safetensors file (``prefix`` [T, width], ``losses`` [steps]) with its metadata."""
    path = Path(path)
    tensors = {"prefix": result.prefix.detach().float().cpu().contiguous(),
               "losses": torch.tensor(result.losses, dtype=torch.float32)}
    write_bytes_atomic(path, safetensors_bytes(tensors, metadata={str(k): str(v) for k, v in result.metadata.items()}))
    return path


def load_prefix(path: str | Path, expect_model: LoadedModel | str | None = None) -> PrefixResult:
    """Read a prefix written by :func:`save_prefix`. With ``expect_model`` (a loaded model or its fingerprint),
    a prefix trained for other weights is a UsageError: its token means nothing to another text tower."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"prefix file '{path}' not found: train one with `typobench defense train-prefix ... --out {path}`")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UsageError(f"prefix file '{path}' is not a safetensors file ({exc}): pass a file written by "
                         "`typobench defense train-prefix`") from None
    if metadata.get("format") != FILE_FORMAT or "prefix" not in tensors or "model_fingerprint" not in metadata:
        raise UsageError(f"'{path}' is not a typobench prompt prefix: pass a file written by "
                         "`typobench defense train-prefix`")
    _check_model(path, metadata, expect_model)
    losses = tensors.get("losses", torch.zeros(0)).tolist()
    return PrefixResult(tensors["prefix"].float(), losses, metadata)


def _check_model(path: Path, metadata: Mapping[str, str], expect_model: LoadedModel | str | None) -> None:
    if expect_model is None:
        return
    wanted = expect_model if isinstance(expect_model, str) else expect_model.fingerprint()
    made_for = metadata["model_fingerprint"]
    if made_for != wanted:
        label = "" if isinstance(expect_model, str) else f" {expect_model.spec.label}"
        raise UsageError(f"prefix '{path}' was trained for model {metadata.get('model_label', '?')} (weights "
                         f"{made_for[:12]}), not this model{label} (weights {wanted[:12]}): train a prefix for it with "
                         "`typobench defense train-prefix --model ...`")
