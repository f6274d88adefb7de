"""--holdout: the validation images a choice was made on stay out of what is reported."""

from __future__ import annotations

import pytest

from typobench.core.errors import UsageError
from typobench.data import load_dataset
from typobench.harness.config import RunConfig, limit_dataset


@pytest.fixture(scope="module")
def sample():
    return load_dataset("cifar10-sample", transform=lambda image: image)


def test_the_rest_is_disjoint_from_the_validation_images_and_covers_everything_else(sample):
    validation = limit_dataset(sample, 60, seed=0)
    rest = limit_dataset(sample, None, seed=0, holdout=60)
    assert len(validation) == 60 and len(rest) == len(sample) - 60
    assert not set(validation.sample_ids) & set(rest.sample_ids)
    assert set(validation.sample_ids) | set(rest.sample_ids) == set(sample.sample_ids)
    # A limit draws from the rest, class-stratified, and never reaches back into the validation images.
    some = limit_dataset(sample, 50, seed=0, holdout=60)
    assert len(some) == 50 and set(some.sample_ids) <= set(rest.sample_ids)
    assert sorted(some.labels.count(c) for c in set(some.labels)) == [5] * 10
    # The validation set depends on the seed, like --limit's subset.
    assert set(limit_dataset(sample, None, seed=1, holdout=60).sample_ids) != set(rest.sample_ids)


def test_a_holdout_keys_the_run_and_runs_without_one_keep_their_key():
    plain = RunConfig(dataset="cifar10-sample", limit=100)
    held = RunConfig(dataset="cifar10-sample", limit=100, holdout=60)
    assert "holdout" not in plain.semantic() and held.semantic()["holdout"] == 60
    assert {k: v for k, v in held.semantic().items() if k != "holdout"} == plain.semantic()
    with pytest.raises(UsageError, match="--holdout must be a positive integer"):
        RunConfig(holdout=0).validate()


def test_the_cli_takes_holdout_and_records_it(tmp_path):
    from typobench.cli import main
    from typobench.harness.results import read_results, read_predictions

    out = tmp_path / "run"
    code = main(["run", "--suite", "none", "--limit", "40", "--holdout", "60", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"])
    assert code == 0
    assert read_results(out)["config"]["holdout"] == 60
    validation = set(limit_dataset(load_dataset("cifar10-sample", transform=lambda image: image), 60, seed=0).sample_ids)
    scored = set(read_predictions(out)["sample_id"].astype(str))
    assert len(scored) == 40 and not scored & validation
