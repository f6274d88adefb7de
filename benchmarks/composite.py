"""Benchmark: text patches composited per second vs. a tiny CLIP's forward images per second.

Compositing should never be the bottleneck of an attack run: the target is a rate at least 10x
the forward rate of the smallest model the benchmark evaluates. Prints figures only.

    python benchmarks/composite.py --batch 256 --sides 32 64
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from typobench.typographic import (
    TextStyle,
    build_canvas,
    canvas_from_records,
    clear_render_cache,
    composite,
    create_placement,
    render_patch,
)

# Short words so a sticker fits a 32 px (CIFAR-size) image at size=0.2.
VOCABULARY = ["iPod", "apple", "dog", "cat", "truck", "ship", "frog", "horse", "bird", "deer", "pizza", "car", "plane", "bank"]


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Fastest seconds per call over ``repeats`` calls after one warm-up.

    The minimum, not the median: on a shared machine other jobs only ever add time, so the
    fastest run is the best estimate of the cost itself (applied to both sides of the ratio).
    """
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def tiny_image_encoder(side: int, device: torch.device) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The project's tiny ResNet CLIP if available, else an equivalent open_clip ModifiedResNet CLIP."""
    try:
        from typobench.models import load_model  # written concurrently; may not exist yet

        loaded = load_model("tiny-rn")
        model = getattr(loaded, "model", loaded)
        model = model.to(device).eval()
        image_size = getattr(getattr(model, "visual", None), "image_size", side)
        if isinstance(image_size, (tuple, list)):
            image_size = image_size[0]
        if int(image_size) != side:
            raise ValueError(f"tiny-rn takes {image_size} px images, not {side}")
        encoder = model.encode_image
        encoder(torch.rand(2, 3, side, side, device=device))  # fail here, not mid-benchmark
        return "typobench.models.load_model('tiny-rn')", encoder
    except Exception as exc:  # noqa: BLE001 - any failure means: use the fallback, and say so
        reason = f"{type(exc).__name__}: {exc}"
    import open_clip

    model = open_clip.model.CLIP(
        embed_dim=64,
        vision_cfg={"layers": [1, 1, 1, 1], "width": 16, "head_width": 16, "image_size": side},
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
    )
    model = model.to(device).eval()
    return f"open_clip CLIP(ModifiedResNet layers=[1,1,1,1], width=16, image_size={side}) [fallback: {reason[:120]}]", model.encode_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sides", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} batch={args.batch}")

    generator = torch.Generator().manual_seed(args.seed)
    for side in args.sides:
        words = [VOCABULARY[i] for i in torch.randint(len(VOCABULARY), (args.batch,), generator=generator).tolist()]
        stickers = [TextStyle(word, font="sans-bold", size=0.2, fill="black", box="white") for word in words]
        plain = [TextStyle(word, font="sans-bold", size=0.2, fill="red", stroke="white") for word in words]
        images = torch.rand(args.batch, 3, side, side, device=device)
        ids = [f"sample-{i}" for i in range(args.batch)]

        clear_render_cache()
        start = time.perf_counter()
        patches_by_kind = {"sticker": [render_patch(style, side) for style in stickers]}
        cold = time.perf_counter() - start
        patches_by_kind["text"] = [render_patch(style, side) for style in plain]
        distinct = len(set(stickers))

        rows = []
        for label, kind, policy_name, params in [
            ("random, 1", "sticker", "random", {}),
            ("off-centre, 1", "sticker", "random_off_center", {"center_fraction": 0.3}),
            ("copies, 8 (Goh)", "sticker", "copies", {"n": 8}),
            ("copies, 8 (Goh)", "text", "copies", {"n": 8}),
        ]:
            styles = stickers if kind == "sticker" else plain
            patches = patches_by_kind[kind]
            policy = create_placement(policy_name, **params)

            def place(policy=policy, patches=patches):
                return [policy.place(p.shape[-2:], (side, side), sample_id=i, seed=args.seed) for p, i in zip(patches, ids)]

            records = place()
            n_patches = sum(len(r.positions) for r in records)

            def composite_only(patches=patches, records=records) -> torch.Tensor:
                return composite(images, canvas_from_records(patches, records, device=device))

            def end_to_end(styles=styles, place=place) -> torch.Tensor:
                # cached render lookup + per-sample placement + canvas + blend
                fresh = [render_patch(style, side) for style in styles]
                placements = [[(p, pos) for pos in r.positions] for p, r in zip(fresh, place())]
                return composite(images, build_canvas(placements, (side, side), device=device))

            t_comp = timed(composite_only, args.repeats, device)
            t_full = timed(end_to_end, args.repeats, device)
            rows.append((label, kind, n_patches / t_comp, args.batch / t_comp, n_patches / t_full, args.batch / t_full))

        name, encoder = tiny_image_encoder(side, device)
        with torch.no_grad():
            t_fwd = timed(lambda: encoder(images), args.repeats, device)
        forward_rate = args.batch / t_fwd

        print(f"\n== {side}x{side} px, {args.batch} images, {distinct} distinct words ==")
        print(f"cold render: {distinct} patches in {cold * 1e3:.1f} ms ({distinct / cold:,.0f} patches/s)")
        print(f"forward: {forward_rate:,.0f} images/s  [{name}]")
        print("rates: patches/s (images/s); ratio = composited patches/s over forward images/s")
        print(f"{'placement, copies':<18} {'patch':<8} {'composite only':>20} {'end-to-end':>20} {'ratio':>14}")
        for label, kind, comp_p, comp_i, full_p, full_i in rows:
            ratio = f"{comp_p / forward_rate:.1f}x / {full_p / forward_rate:.1f}x"
            print(f"{label:<18} {kind:<8} {comp_p:>10,.0f} ({comp_i:>7,.0f}) {full_p:>10,.0f} ({full_i:>7,.0f}) {ratio:>14}")

if __name__ == "__main__":
    main()
