"""Training configs: validation messages, ``base`` inheritance, the shipped recipes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unifuse.errors import ConfigError
from unifuse.models.tita.config import TITAConfig
from unifuse.training.config import dataset_specs, from_dict, load_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def _minimal(**over):
    return {"tasks": [{"name": "MFF", "datasets": [{"type": "synthetic"}]}], **over}


@pytest.mark.parametrize(
    "data, key",
    [
        ({"optimizer": {"lrr": 1}}, "'optimizer.lrr'"),
        ({"iterations": "many"}, "iterations must be an integer"),
        ({"iterations": 0}, "iterations must be >= 1"),
        ({"ema_decay": 1.0}, "ema_decay must be in [0, 1)"),
        ({"optimizer": {"betas": [0.9]}}, "optimizer.betas must be a list of 2 values"),
        ({"weighting": "pcgrad"}, "weighting must be one of"),
        ({"loss": "l2"}, "loss must be one of"),
        ({"tasks": [{"name": "MFF", "datasets": [{"root": "x"}]}]}, "tasks[0].datasets[0].type is required"),
        ({"tasks": [{"name": "MFF", "datasetz": []}]}, "'tasks[0].datasetz'"),
        ({"tensorboard": "yes"}, "tensorboard must be true or false"),
    ],
)
def test_bad_values_name_the_file_and_key(data, key):
    with pytest.raises(ConfigError) as e:
        from_dict(_minimal(**data) if "tasks" not in data else data, where="my.yaml")
    assert str(e.value).startswith("my.yaml: ") and key in str(e.value)


def test_yaml_errors_and_base_chain(tmp_path):
    (tmp_path / "proj" / "configs").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text("")
    tmp_path = tmp_path / "proj" / "configs"
    (tmp_path / "bad.yaml").write_text("iterations: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "a.yaml").write_text("base: b.yaml\nmodel: {name: tita, drop_path_rate: 0.0}\nweighting: mean\n")
    (tmp_path / "b.yaml").write_text(
        "iterations: 7\nmodel: {name: tita, embed_dim: 12}\nweighting: {name: famo, lr: 0.1}\n"
        "tasks: [{name: MFF, datasets: [{type: synthetic}]}]\ndata_root: rel/data\n"
    )
    cfg = load_config(tmp_path / "a.yaml", {"optimizer.lr": 1e-3})
    assert cfg.iterations == 7 and cfg.model == {"name": "tita", "embed_dim": 12, "drop_path_rate": 0.0}  # mappings merge
    assert cfg.weighting.name == "mean" and cfg.optimizer.lr == 1e-3  # scalars replace, overrides apply
    assert Path(cfg.data_root) == (tmp_path.parent / "rel" / "data").resolve()  # the repository root is found
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "loop.yaml")


def test_paper_recipe():
    cfg = load_config(REPO / "configs" / "tita.yaml")
    assert cfg.task_names() == ["IVF", "MFF", "MEF"]
    assert (cfg.crop_size, cfg.batch_size, cfg.iterations, cfg.seed) == (64, 8, 20000, 17)
    assert cfg.weighting.name == "famo" and cfg.weighting.params == {"lr": 0.025, "weight_decay": 0.001}
    assert cfg.optimizer.lr == 2e-5 and cfg.optimizer.weight_decay == 0 and tuple(cfg.optimizer.betas) == (0.9, 0.999)
    assert cfg.ema_decay == 0.999 and cfg.loss == "task_specific"
    assert TITAConfig.from_dict({k: v for k, v in cfg.model.items() if k != "name"}) == TITAConfig()  # the paper's network
    assert Path(cfg.data_root) == (REPO / ".." / "shared" / "data").resolve()  # relative to the repository


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(REPO / "configs")) for p in CONFIGS])
def test_shipped_configs_are_valid(path):
    cfg = load_config(path)
    if cfg.model["name"] == "tcmoa":  # TC-MoA recipes: network preset + objective params, official task order
        from unifuse.models.tcmoa import preset_config
        from unifuse.training.objectives import create_objective

        preset_config(**{k: v for k, v in cfg.model.items() if k != "name"})
        assert create_objective(cfg).name == cfg.objective.name
        assert cfg.task_names() == ["IVF", "MEF", "MFF"]
        return
    if cfg.model["name"] == "mmaif":  # MMAIF recipes: model config + objective params
        from unifuse.models.mmaif import MMAIFConfig
        from unifuse.training.objectives import create_objective

        MMAIFConfig.from_dict({k: v for k, v in cfg.model.items() if k != "name"})
        assert create_objective(cfg).name == "mmaif"
        assert cfg.task_names() == ["IVF", "MEF", "MFF"]
        return
    TITAConfig.from_dict({k: v for k, v in cfg.model.items() if k != "name"})
    assert cfg.task_names() == ["IVF", "MFF", "MEF"]


def test_ablation_switches():
    abl = {p.stem: load_config(p) for p in (REPO / "configs" / "ablations").glob("*.yaml")}
    assert abl["no_famo"].weighting.name == "mean" and abl["no_famo"].model == load_config(REPO / "configs" / "tita.yaml").model
    b = abl["baseline"]
    assert (b.model["fusion_layout"], b.model["interaction"], b.model["fusion_head"], b.loss, b.weighting.name) == ("SF", "none", "1conv", "uni", "mean")
    assert abl["no_hpf"].model["oaf_branches"] == ["add", "mul"] and abl["no_dw"].model["oaf_dynamic_weights"] is False
    assert {c.model["interaction"] for k, c in abl.items() if k.startswith("sf_")} == {"TE", "PA", "IPA"}


def test_paper_recipe_datasets_build_from_shared_data(data_dir):
    from unifuse.data.datasets import build_dataset

    cfg = load_config(REPO / "configs" / "tita.yaml")
    cfg.data_root = str(data_dir)
    sizes = {t.name: sum(len(build_dataset(s)) for s in dataset_specs(cfg, t)) for t in cfg.tasks}
    assert sizes == {"IVF": 75, "MFF": 72, "MEF": 40}  # counts from shared/data/README.md


def test_key_value_reads_yaml_scalars_and_refuses_in_one_line():
    from unifuse.training.config import key_value

    assert key_value("model.depth = 4") == ("model.depth", 4)
    assert key_value("mode=flow") == ("mode", "flow") and key_value("sizes=[1, 2]") == ("sizes", [1, 2])
    for bad, msg in (("depth", "'depth' is not OPT=VAL"), ("=3", "'=3' is not OPT=VAL"), ("a=[1", "a: value is not valid YAML")):
        with pytest.raises(ConfigError, match=re.escape(msg)):
            key_value(bad, "OPT=VAL")
