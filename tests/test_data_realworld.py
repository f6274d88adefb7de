"""Loaders for the real-photo typographic attack sets, each on a tiny fixture in its on-disk format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from typobench.data import ImageDataset, dataset_entry, load_dataset
from typobench.data.realworld import parse_attack_filename
from typobench.data.union_labels import normalize_label
from typobench.core.errors import UsageError

TRANSFORM = T.Compose([T.Resize(16), T.CenterCrop(16), T.ToTensor()])
NAMES = ("materzynska", "paint", "rta100", "scam")


def write_image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10, 8), (value, 255 - value, 7)).save(path)


def red_of(ds: ImageDataset, i: int) -> float:
    return ds[i][0][0].mean().item() * 255


def by_id(ds: ImageDataset, sample_id: str) -> tuple[str, str | None]:
    """(true class name, written class name or None) of the item with this id."""
    i = ds.sample_ids.index(sample_id)
    assert ds.text_targets is not None
    text = ds.text_targets[i]
    return ds.classnames[ds.labels[i]], (None if text == -1 else ds.classnames[text])


# --- Materzynska ---------------------------------------------------------------------------------


def write_materzynska(root: Path, annotation: object, *, name: str = "annotation.json") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(json.dumps(annotation))


@pytest.fixture()
def materzynska_root(tmp_path: Path) -> Path:
    root = tmp_path / "materzynska"
    write_materzynska(
        root,
        {
            "IMG_2934.JPG": {"true object": "cup", "typographic attack label": "good"},
            "IMG_2935.JPG": {"true object": "Cup", "typographic attack label": ""},  # no attack
            "IMG_2940.JPG": {"true object": "remote_control", "typographic attack label": "Dog "},
        },
    )
    write_image(root / "IMG_2934.JPG", 30)
    write_image(root / "IMG_2935.JPG", 60)
    write_image(root / "IMG_2940.JPG", 90)
    write_image(root / "IMG_9999.JPG", 120)  # not annotated: ignored
    return root


def test_materzynska_union_labels_and_text_targets(materzynska_root: Path) -> None:
    ds = load_dataset("materzynska", root=materzynska_root, transform=TRANSFORM)
    assert ds.classnames == ["cup", "dog", "good", "remote control"]
    assert ds.templates == ["a photo of a {}."]
    assert ds.sample_ids == ["IMG_2934.JPG", "IMG_2935.JPG", "IMG_2940.JPG"]
    assert ds.labels == [0, 0, 3] and ds.text_targets == [2, -1, 1]
    assert by_id(ds, "IMG_2940.JPG") == ("remote control", "dog")
    assert abs(red_of(ds, 2) - 90) < 8  # the pixels are IMG_2940's
    assert ds.describe()["has_text_targets"] is True and ds.describe()["num_classes"] == 4


def test_materzynska_defense_prefix_layout(tmp_path: Path) -> None:
    """annotations.json + images/ inside typographic_attack_dataset/ (the layout Defense-Prefix reads)."""
    folder = tmp_path / "root" / "typographic_attack_dataset"
    write_materzynska(folder, {"a.jpg": {"true object": "apple", "typographic attack label": "ipod"}},
                      name="annotations.json")
    (folder / "classes.json").write_text(json.dumps({"apple": 0}))
    write_image(folder / "images" / "a.jpg", 40)
    ds = load_dataset("materzynska", root=tmp_path / "root", transform=TRANSFORM)
    assert ds.sample_ids == ["typographic_attack_dataset/images/a.jpg"]
    assert ds.classnames == ["apple", "ipod"] and ds.labels == [0] and ds.text_targets == [1]


def test_materzynska_malformed_annotation_names_file_and_field(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write_materzynska(root, {"a.jpg": {"object": "cup", "typographic attack label": "good"}})
    write_image(root / "a.jpg", 10)
    with pytest.raises(UsageError) as info:
        load_dataset("materzynska", root=root, transform=TRANSFORM)
    message = str(info.value)
    assert "annotation.json" in message and "'a.jpg'" in message and "'true object'" in message
    assert "\n" not in message

    write_materzynska(root, ["a.jpg"])
    with pytest.raises(UsageError, match="not a non-empty JSON object"):
        load_dataset("materzynska", root=root, transform=TRANSFORM)

    (root / "annotation.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read .*annotation.json"):
        load_dataset("materzynska", root=root, transform=TRANSFORM)


def test_materzynska_missing_image_is_named(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write_materzynska(root, {"gone.jpg": {"true object": "cup", "typographic attack label": "good"}})
    with pytest.raises(UsageError, match=r"'gone.jpg'.*image not found"):
        load_dataset("materzynska", root=root, transform=TRANSFORM)


def test_materzynska_folder_without_annotation(tmp_path: Path) -> None:
    write_image(tmp_path / "x" / "a.jpg", 10)
    with pytest.raises(UsageError) as info:
        load_dataset("materzynska", root=tmp_path / "x", transform=TRANSFORM)
    message = str(info.value)
    assert "annotation.json or annotations.json" in message and "disentangling_spelling_in_clip" in message


# --- PAINT and RTA-100 ---------------------------------------------------------------------------


@pytest.fixture()
def paint_root(tmp_path: Path) -> Path:
    root = tmp_path / "paint"
    images = root / "typographic_attacks"
    write_image(images / "label=dog_text=cat.png", 20)
    write_image(images / "label=dog_text=dog.png", 40)  # the written word is the true label
    write_image(images / "label=coffee_mug_text=hot_dog.jpg", 60)
    write_image(images / "label=Tennis Ball_text=ipod.JPG", 80)
    (images / "README.txt").write_text("not an image")
    write_image(root / "__MACOSX" / "typographic_attacks" / "label=zebra_text=pig.png", 1)  # skipped
    write_image(images / ".label=yak_text=owl.png", 1)  # hidden: skipped
    return root


@pytest.mark.parametrize("name", ["paint", "rta100"])
def test_filename_annotated_union_labels(paint_root: Path, name: str) -> None:
    ds = load_dataset(name, root=paint_root, transform=TRANSFORM)
    assert ds.name == name and ds.split == "test"
    assert ds.classnames == ["cat", "coffee mug", "dog", "hot dog", "ipod", "tennis ball"]
    assert ds.templates == ["a photo of a {}."]
    assert ds.sample_ids == [
        "typographic_attacks/label=Tennis Ball_text=ipod.JPG",
        "typographic_attacks/label=coffee_mug_text=hot_dog.jpg",
        "typographic_attacks/label=dog_text=cat.png",
        "typographic_attacks/label=dog_text=dog.png",
    ]
    assert ds.labels == [5, 1, 2, 2] and ds.text_targets == [4, 3, 0, 2]
    assert by_id(ds, "typographic_attacks/label=coffee_mug_text=hot_dog.jpg") == ("coffee mug", "hot dog")
    assert abs(red_of(ds, 2) - 20) < 8


def test_rta100_flat_folder(tmp_path: Path) -> None:
    root = tmp_path / "RTA100"
    write_image(root / "label=pen_text=knife.jpg", 10)
    write_image(root / "label=banana_text=phone.jpg", 20)
    ds = load_dataset("rta100", root=root, transform=TRANSFORM)
    assert ds.sample_ids == ["label=banana_text=phone.jpg", "label=pen_text=knife.jpg"]
    assert ds.classnames == ["banana", "knife", "pen", "phone"]
    assert ds.labels == [0, 2] and ds.text_targets == [3, 1]


def test_filename_parser() -> None:
    assert parse_attack_filename("label=dog_text=cat.png") == ("dog", "cat")
    assert parse_attack_filename("label=ice_cream_text=st. louis.jpeg") == ("ice cream", "st. louis")
    assert parse_attack_filename("label=dog.png") is None
    assert parse_attack_filename("dog_cat.png") is None
    assert normalize_label("  Golden_Retriever  ") == "golden retriever"


def test_malformed_file_name_is_named(paint_root: Path) -> None:
    write_image(paint_root / "typographic_attacks" / "label=dog-cat.png", 5)
    with pytest.raises(UsageError) as info:
        load_dataset("paint", root=paint_root, transform=TRANSFORM)
    message = str(info.value)
    assert "label=dog-cat.png" in message and "label=<object>_text=<word>" in message


def test_folder_without_annotated_files(tmp_path: Path) -> None:
    write_image(tmp_path / "p" / "dog.png", 5)
    with pytest.raises(UsageError) as info:
        load_dataset("paint", root=tmp_path / "p", transform=TRANSFORM)
    message = str(info.value)
    assert "label=<object>_text=<word>" in message and "1 other images ignored" in message
    assert "mlfoundations/patching" in message


# --- SCAM ----------------------------------------------------------------------------------------

SCAM_COLUMNS = ["file_name", "type", "object_label", "attack_word", "postit_area_pct", "id"]
SCAM_ROWS = [
    ["SCAM_img_0001.jpg", "SCAM", "ball", "car", "0.377", "SCAM_img_0001"],
    ["SCAM_img_0002.jpg", "SCAM", "fire extinguisher", "car", "0.87", "SCAM_img_0002"],
    ["NoSCAM_img_0001.jpg", "NoSCAM", "ball", "car", "0.377", "NoSCAM_img_0001"],
    ["NoSCAM_img_0002.jpg", "NoSCAM", "fire extinguisher", "car", "0.87", "NoSCAM_img_0002"],
    ["SynthSCAM_img_0001.jpg", "SynthSCAM", "ball", "car", "0.377", "SynthSCAM_img_0001"],
    ["SynthSCAM_img_0003.jpg", "SynthSCAM", "keyboard", "zebra", "1.5", "SynthSCAM_img_0003"],
]


def write_scam(folder: Path, rows: list[list[str]], columns: list[str] = SCAM_COLUMNS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    for n, row in enumerate(rows):
        write_image(folder / row[0], 20 + 30 * n)
    return folder / "metadata.csv"


@pytest.fixture()
def scam_root(tmp_path: Path) -> Path:
    root = tmp_path / "SCAM"
    write_scam(root / "train", SCAM_ROWS)  # the unzipped images.zip: train/metadata.csv + images
    return root


def test_scam_variants_share_one_class_list(scam_root: Path) -> None:
    classes = ["ball", "car", "fire extinguisher", "keyboard", "zebra"]
    real = load_dataset("scam", root=scam_root, transform=TRANSFORM)  # default split "test" = scam
    assert real.split == "scam" and real.classnames == classes and real.templates == ["a photo of a {}."]
    assert real.sample_ids == ["train/SCAM_img_0001.jpg", "train/SCAM_img_0002.jpg"]
    assert real.labels == [0, 2] and real.text_targets == [1, 1]
    assert abs(red_of(real, 1) - 50) < 8  # SCAM_img_0002's pixels

    synth = load_dataset("scam", root=scam_root, split="synthscam", transform=TRANSFORM)
    assert synth.classnames == classes
    assert by_id(synth, "train/SynthSCAM_img_0003.jpg") == ("keyboard", "zebra")

    none = load_dataset("scam", root=scam_root, split="NoSCAM", transform=TRANSFORM)
    assert none.split == "noscam" and none.classnames == classes
    assert none.labels == [0, 2] and none.text_targets == [-1, -1]  # post-it removed: nothing written


def test_scam_jsonl_metadata_and_variant_from_id(tmp_path: Path) -> None:
    folder = tmp_path / "scam" / "images" / "train"
    rows = [
        {"file_name": "SCAM_img_0001.jpg", "object_label": "Tea_Pot", "attack_word": "elevator", "id": "SCAM_img_0001"},
        {"file_name": "NoSCAM_img_0001.jpg", "object_label": "tea pot", "attack_word": "elevator"},
    ]
    folder.mkdir(parents=True)
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    write_image(folder / "SCAM_img_0001.jpg", 10)
    write_image(folder / "NoSCAM_img_0001.jpg", 10)
    ds = load_dataset("scam", root=tmp_path / "scam", transform=TRANSFORM)
    assert ds.sample_ids == ["images/train/SCAM_img_0001.jpg"]
    assert ds.classnames == ["elevator", "tea pot"] and ds.labels == [1] and ds.text_targets == [0]


def test_scam_malformed_metadata_names_file_and_field(tmp_path: Path) -> None:
    rows = [[r[0], r[1], r[2], r[4], r[5]] for r in SCAM_ROWS]
    write_scam(tmp_path / "s", rows, columns=["file_name", "type", "object_label", "postit_area_pct", "id"])
    with pytest.raises(UsageError) as info:
        load_dataset("scam", root=tmp_path / "s", transform=TRANSFORM)
    message = str(info.value)
    assert "metadata.csv, line 2" in message and "'attack_word'" in message and "\n" not in message


def test_scam_unknown_type_and_missing_variant(tmp_path: Path) -> None:
    write_scam(tmp_path / "a", [["x.jpg", "Poster", "ball", "car", "1", "x"]])
    with pytest.raises(UsageError, match=r"line 2.*field 'type' must be one of SCAM, SynthSCAM, NoSCAM"):
        load_dataset("scam", root=tmp_path / "a", transform=TRANSFORM)
    write_scam(tmp_path / "b", SCAM_ROWS[:2])
    with pytest.raises(UsageError, match=r"no NoSCAM rows for split 'noscam'; choose from scam"):
        load_dataset("scam", root=tmp_path / "b", split="noscam", transform=TRANSFORM)


def test_scam_without_metadata_and_with_two(tmp_path: Path) -> None:
    write_image(tmp_path / "bare" / "SCAM_img_0001.jpg", 10)
    with pytest.raises(UsageError) as info:
        load_dataset("scam", root=tmp_path / "bare", transform=TRANSFORM)
    assert "metadata.csv or metadata.jsonl" in str(info.value) and "BLISS-e-V/SCAM" in str(info.value)
    write_scam(tmp_path / "two" / "x", SCAM_ROWS[:1])
    write_scam(tmp_path / "two" / "y", SCAM_ROWS[:1])
    with pytest.raises(UsageError, match="found 2 metadata files"):
        load_dataset("scam", root=tmp_path / "two", transform=TRANSFORM)


def test_scam_split_names() -> None:
    entry = dataset_entry("scam")
    assert entry.resolve_split("test") == "scam" and entry.resolve_split("SynthSCAM") == "synthscam"
    with pytest.raises(UsageError, match="no split 'train'"):
        entry.resolve_split("train")


# --- shared behaviour ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_wrong_root_is_one_line_usage_error(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(UsageError) as info:
        load_dataset(name, root=missing, transform=TRANSFORM)
    message = str(info.value)
    assert "\n" not in message and str(missing) in message and "does not exist" in message
    assert "--data-root must be" not in message and "expects --data-root to be" in message
    with pytest.raises(UsageError, match="needs --data-root"):
        load_dataset(name, transform=TRANSFORM)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError) as info:
        load_dataset(name, root=empty, transform=TRANSFORM)
    assert "\n" not in str(info.value) and str(empty) in str(info.value)


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("materzynska", "github.com/joaanna/disentangling_spelling_in_clip"),
        ("paint", "github.com/mlfoundations/patching"),
        ("rta100", "github.com/azuma164/Defense-Prefix"),
        ("scam", "huggingface.co/datasets/BLISS-e-V/SCAM"),
    ],
)
def test_how_to_get_cites_the_source(name: str, source: str) -> None:
    entry = dataset_entry(name)
    assert source in entry.how_to_get and "\n" not in entry.how_to_get
    assert entry.needs_root and not entry.downloadable
    assert "union-label" in entry.description


def test_subset_and_with_transform_keep_text_targets(paint_root: Path) -> None:
    ds = load_dataset("paint", root=paint_root, transform=TRANSFORM)
    sub = ds.subset([3, 1])
    assert sub.text_targets == [2, 3] and sub.labels == [2, 1]
    assert sub.describe()["has_text_targets"] is True
    assert sub.subset([1]).text_targets == [3]
    other = ds.with_transform(T.Compose([T.Resize(8), T.CenterCrop(8), T.ToTensor()]))
    assert other.text_targets == ds.text_targets and other[0][0].shape == (3, 8, 8)
    assert torch.equal(sub[1][0], ds[1][0])


def test_ordinary_data_sets_have_no_text_targets(tmp_path: Path) -> None:
    write_image(tmp_path / "f" / "cat" / "a.png", 10)
    ds = load_dataset("folder", root=tmp_path / "f", transform=TRANSFORM)
    assert ds.text_targets is None and ds.subset([0]).text_targets is None
    assert "has_text_targets" not in ds.describe()


def test_image_dataset_checks_text_targets() -> None:
    common = dict(name="x", split="test", classnames=["a", "b"], templates=["{}"], labels=[0, 1],
                  sample_ids=["p", "q"], loader=lambda i: Image.new("RGB", (2, 2)), transform=TRANSFORM)
    with pytest.raises(ValueError, match="1 text targets but 2 labels"):
        ImageDataset(**common, text_targets=[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="text target 2 out of range"):
        ImageDataset(**common, text_targets=[-1, 2])  # type: ignore[arg-type]
    assert ImageDataset(**common, text_targets=[-1, 0]).text_targets == [-1, 0]  # type: ignore[arg-type]
