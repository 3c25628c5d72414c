"""The published-methods cache: reused while the files are unchanged, recomputed otherwise."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from unifuse import metrics
from unifuse.errors import InputMismatchError
from unifuse.report.benchmark.cache import MetricCache
from unifuse.report.benchmark.scoring import score_published
from unifuse.report.benchmark.suites import vifb_suite

RNG = np.random.default_rng(5)


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture()
def data(tmp_path):
    root = tmp_path / "data" / "v"
    for sub in ("vi", "ir", "fused/M"):
        _save(root / sub / "x.png", RNG.integers(0, 256, (24, 20), dtype=np.uint8))
    return tmp_path / "data"


def _set_cached(path, metric, value):
    rows = list(csv.DictReader(open(path, newline="")))
    rows[0][metric] = repr(value)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_cache_reuse_and_invalidation(data, tmp_path):
    suite = vifb_suite(data, "v")
    root, path = data / "v", tmp_path / "cache.csv"
    direct = metrics.evaluate(root / "fused/M/x.png", root / "vi/x.png", root / "ir/x.png", metrics=["sd", "ei"])

    cache = MetricCache(path)
    rows = score_published(suite, ["sd"], "native", cache, progress=False)
    cache.save(["sd"])
    assert rows[0]["sd"] == direct["sd"] and rows[0]["kind"] == "published"

    _set_cached(path, "sd", -1.0)  # a cached value is used as is ...
    cache = MetricCache(path)
    assert score_published(suite, ["sd"], "native", cache, progress=False)[0]["sd"] == -1.0
    # ... a missing metric is computed and merged into the row
    row = score_published(suite, ["sd", "ei"], "native", cache, progress=False)[0]
    assert (row["sd"], row["ei"]) == (-1.0, direct["ei"])
    assert score_published(suite, ["sd"], "native", MetricCache(path, enabled=False), progress=False)[0]["sd"] == direct["sd"]

    _save(root / "fused/M/x.png", RNG.integers(0, 256, (24, 20), dtype=np.uint8))  # new content: new key
    new = metrics.evaluate(root / "fused/M/x.png", root / "vi/x.png", root / "ir/x.png", metrics=["sd"])["sd"]
    assert score_published(suite, ["sd"], "native", cache, progress=False)[0]["sd"] == new != direct["sd"]


def test_incomplete_method_folder_is_a_clear_error(data):
    _save(data / "v/vi/y.png", RNG.integers(0, 256, (24, 20), dtype=np.uint8))
    _save(data / "v/ir/y.png", RNG.integers(0, 256, (24, 20), dtype=np.uint8))
    with pytest.raises(InputMismatchError, match=r"fused/M: no fused image for y"):
        vifb_suite(data, "v")
