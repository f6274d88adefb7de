"""The atlas (issue 18, item 6) and the sparse probe's outputs, on a tiny finished run: every page's links
and images resolve inside the folder, names are escaped, the folder rebuilds from the files alone, and
in headless Chromium every page renders with all its images drawn."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest
from PIL import Image

from helpers import chromium, headless
from test_neurons import _colour_folder
from typobench.cli import main
from typobench.harness.config import RunConfig
from typobench.harness.run import execute
from typobench.neurons.atlas.site import write_atlas


class Refs(HTMLParser):
    """Every href and src of a page, its ``<html>`` attributes, and its text."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.html_attrs: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.html_attrs = attrs
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Refs:
    refs = Refs()
    refs.feed(text)
    return refs


def check_folder(atlas: Path) -> dict[str, Refs]:
    """Every page's links and images are relative and name files inside ``atlas``; the parsed pages."""
    pages = {page.name: parse(page.read_text(encoding="utf-8")) for page in sorted(atlas.glob("*.html"))}
    assert "index.html" in pages
    for name, refs in pages.items():
        for ref in refs.links + refs.images:
            url = urlparse(ref)
            assert not url.scheme and not url.netloc and not ref.startswith("/"), (name, ref)
            target = (atlas / unquote(url.path)).resolve()
            assert target.is_file() and atlas.resolve() in target.parents, (name, ref)
    return pages


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    """A tiny ResNet run with failures, analysed with --sparse-probe and --atlas."""
    root = tmp_path_factory.mktemp("atlas")
    _colour_folder(root / "colours")
    (root / "vocab.txt").write_text("table\ncloud\nlamp\n$$$\n")
    run = root / "run"
    execute(RunConfig(model="tiny-rn", suite="random-wrong-label", dataset="folder", data_root=str(root / "colours"),
                      head="linear-probe", limit=40, batch_size=16, out=str(run), cache_dir=str(root / "cache"),
                      device="cpu"), progress=False)
    assert main(["neurons", "--from", str(run), "--top-k", "3", "--draws", "2", "--device", "cpu", "--quiet",
                 "--vocab", str(root / "vocab.txt"), "--sparse-probe", "--probe-per-class", "2", "--atlas"]) == 0
    return run


def test_sparse_probe_outputs_say_which_images_and_keep_them_apart(analysed):
    probe = json.loads((analysed / "sparse_probe.json").read_text())
    images = probe["images"]
    assert images["disjoint"] is True and images["train"]["n"] + images["held_out"]["n"] == 40
    assert images["train"]["sample_hash"] != images["held_out"]["sample_hash"]
    assert "train half" in images["how"] and "held-out half" in images["how"]
    weights = pd.read_csv(analysed / "sparse_probe.csv")
    assert len(weights) == len(probe["weights"]) > 0 and (weights.weight != 0).all()
    per_class = weights.groupby("class").size().reindex(probe["sparse"]["neurons_per_class"], fill_value=0)
    assert per_class.to_dict() == probe["sparse"]["neurons_per_class"]
    assert abs(probe["sparse"]["per_class"] - 2) <= 1
    assert 0 <= probe["sparse"]["held_out_accuracy"] <= 1 and 0 <= probe["full"]["held_out_accuracy"] <= 1
    report = json.loads((analysed / "neurons.json").read_text())
    assert report["sparse_probe"]["sparse"] == probe["sparse"] and "weights" not in report["sparse_probe"]
    assert "## Sparse linear probe" in (analysed / "neurons.md").read_text()


def test_atlas_links_and_images_resolve_and_cover_every_unit(analysed):
    atlas = analysed / "atlas"
    pages = check_folder(atlas)
    report = json.loads((analysed / "neurons.json").read_text())
    blamed = {n for a in report["analyses"] for n in a.get("blamed", [])}
    probe = json.loads((analysed / "sparse_probe.json").read_text())
    index = pages["index.html"]
    unit_pages = [link for link in index.links if link.startswith("neuron-")]
    for name in blamed:
        assert f"neuron-{name.replace(':', '-')}.html" in unit_pages
    for link in unit_pages:
        assert "index.html" in pages[link].links  # and back
    assert {f"neuron-{row['neuron'].replace(':', '-')}.html" for row in probe["weights"]} <= set(pages["probe.html"].links)
    for card in report["cards"]["neurons"]:  # the card and the dataset examples are shown on the neuron's page
        page = pages[f"neuron-{card['neuron'].replace(':', '-')}.html"]
        assert len(page.images) == 1 + len(card["top_images"])
    blame_order = [float(re.sub("%", "", cells)) for cells in re.findall(r'<td class="num">([\d.]+)%</td>',
                                                                         (atlas / "index.html").read_text())]
    assert blame_order == sorted(blame_order, reverse=True) and blame_order


def test_atlas_rebuilds_from_the_files_alone(analysed, tmp_path):
    written = write_atlas(analysed, tmp_path / "again")
    original = sorted(p.relative_to(analysed / "atlas").as_posix() for p in (analysed / "atlas").rglob("*")
                      if p.is_file())
    assert sorted(written) == original
    for name in written:
        assert (tmp_path / "again" / name).read_bytes() == (analysed / "atlas" / name).read_bytes(), name


def _png(path: Path, colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)


EVIL = '<script>alert("x")</script>&'


def _synthetic_outputs(folder: Path) -> None:
    """neurons.json with hostile names, a heads section, a microscope.json and a sparse_probe.json."""
    neuron = f"layer4{EVIL}:7"
    head = "resblocks.1.attn:2"
    _png(folder / "neuron_cards" / "evil.png")
    _png(folder / "microscope" / "plain.png")
    _png(folder / "microscope" / "facet.png", (30, 30, 200))
    blame = {"neuron": neuron, "rank": 1, "share": 0.4, "mean_attr_attacked": 1.0, "mean_attr_clean": 0.1,
             "mean_attr_diff": 0.9}
    detail = {"metric": "restored", "zero": {"blamed": 0.5, "random_mean": 0.1, "matched_mean": 0.2, "text": "t"}}
    report = {
        "run": {"model": f"m{EVIL}", "dataset": "d", "suite": "s", "dir": "/x"}, "layers": [],
        "analyses": [{"stage": f"st{EVIL}", "kind": "failure", "n_events": 3, "blamed": [neuron], "blame": [blame],
                      "verdict_detail": detail, "verdict": f"v{EVIL}"}],
        "cards": {"neurons": [{"neuron": neuron, "card": "neuron_cards/evil.png", "top_words": [[EVIL, 2.5]],
                               "multimodal": False, "blamed_for": [f"st{EVIL}/failure"], "top_images": []}]},
        "heads": {"analyses": [{"stage": "st", "kind": "failure", "n_events": 3, "blamed": [head],
                                "blame": [{**blame, "neuron": head, "share": 0.2}], "verdict_detail": detail}],
                  "cards": {"neurons": [{"neuron": head, "top_words": [["lamp", 1.0]],
                                         "text_directions": [{"text": EVIL, "explained_variance": 0.3}]}],
                            "top_images_by": "x"}},
    }
    microscope = {"neurons": {neuron: {"plain_png": "microscope/plain.png", "facet_png": "microscope/facet.png",
                                       "excitation": {"ratio": 3.0}, "plain_class": EVIL, "facet_class": "cat",
                                       "reads": "cat", "text_words": [["cat", 0.3]], "pixel_words": [[EVIL, 2.0]],
                                       "agreement": {"spearman": 0.5, "overlap": 0.2, "k": 10}}},
                  "summary": {"median_ratio": 3.0, "agreement_blamed": {"spearman": 0.5}}}
    probe = {"method": "m", "n_neurons": 9, "chance": 0.25, "target_per_class": 3, "path": [],
             "images": {"how": "h", "source": "s", "disjoint": True, "train": {"n": 2}, "held_out": {"n": 2}},
             "sparse": {"per_class": 1.0, "neurons_used": 2, "held_out_accuracy": 0.5},
             "full": {"held_out_accuracy": 0.75},
             "weights": [{"class": EVIL, "neuron": neuron, "unit": 7, "weight": 1.5},
                         {"class": "cat", "neuron": "layer4:3", "unit": 3, "weight": -0.5}]}
    for name, value in (("neurons.json", report), ("microscope.json", microscope), ("sparse_probe.json", probe)):
        (folder / name).write_text(json.dumps(value))


def test_pages_escape_names_and_show_heads_microscope_and_probe(tmp_path):
    _synthetic_outputs(tmp_path)
    write_atlas(tmp_path)
    atlas = tmp_path / "atlas"
    pages = check_folder(atlas)
    for page in atlas.glob("*.html"):
        text = page.read_text()
        assert "<script>alert" not in text, page.name  # every name, class, word and verdict was escaped
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.html", page.name)
    neuron_page = next(name for name in pages if name.startswith("neuron-layer4_"))
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in (atlas / neuron_page).read_text()
    assert len(pages[neuron_page].images) == 3  # the card and both feature visualizations, copied under img/
    assert "neuron-layer4-3.html" in pages["probe.html"].links  # a probe neuron without blame still has a page
    index = pages["index.html"]
    assert index.links.index(neuron_page) < index.links.index("head-resblocks.1.attn-2.html")  # by blame
    head_text = "".join(pages["head-resblocks.1.attn-2.html"].text)
    assert "Text directions (TextSpan)" in head_text and EVIL in head_text


def test_atlas_renders_in_headless_chromium_with_every_image_drawn(analysed, tmp_path):
    browser = chromium()
    atlas = analysed / "atlas"
    index = _dom(browser, atlas / "index.html")
    assert index.html_attrs.get("data-ready") == "1", "the page's script did not run"
    followed = [link for link in index.links if link.endswith(".html") and link != "index.html"]
    assert any(link.startswith("neuron-") for link in followed) and "probe.html" in followed
    for link in followed:
        page = _dom(browser, atlas / link)
        images = len(parse((atlas / link).read_text()).images)
        assert page.html_attrs.get("data-ready") == "1", link
        assert page.html_attrs.get("data-images-broken") == "0", link
        assert page.html_attrs.get("data-images-ok") == str(images), link
    # The check can fail: a copy of the site with one image gone reports it.
    broken = tmp_path / "broken"
    shutil.copytree(atlas, broken)
    page = next(link for link in followed if parse((atlas / link).read_text()).images)
    (broken / unquote(parse((atlas / page).read_text()).images[0])).unlink()
    assert _dom(browser, broken / page).html_attrs.get("data-images-broken") == "1"


def _dom(browser: str, page: Path) -> Refs:
    done = headless(browser, "--dump-dom", "--allow-file-access-from-files", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    return parse(done.stdout)
