"""config.yaml is validated by Snakemake's own validate() against ngbench/config.schema.yaml."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SCHEMA = str(REPO / "ngbench" / "config.schema.yaml")


def shipped():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_shipped_config_is_valid_and_defaults_fill_in():
    cfg = {"models": {"gpt2": None}}
    validate(cfg, SCHEMA, set_default=True)
    assert cfg["backends"]["torch"]["iterations"] == 10
    assert cfg["backends"]["torch"]["warmup"] == 3
    assert cfg["platforms"] == {"cpu": {"device": "cpu", "backends": None}}  # None: every enabled backend
    assert cfg["on_error"] == "record"
    validate(shipped(), SCHEMA, set_default=True)


def test_every_schema_property_is_described():
    schema = yaml.safe_load(Path(SCHEMA).read_text())

    def walk(node, path):
        for key, sub in (node.get("properties") or {}).items():
            assert "description" in sub, f"{path}.{key} has no description"
            walk(sub, f"{path}.{key}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")

    walk(schema, "config")


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda c: c["backends"]["torch"].__setitem__("iterations", "ten"), "iterations"),
        (lambda c: c["backends"]["torch"].__setitem__("iteratons", 3), "iteratons"),
        (lambda c: c["platforms"].__setitem__("gpu", {"device": "tpu"}), "tpu"),
        (lambda c: c["models"]["gpt2"].__setitem__("batch_sizes", [0]), "batch_sizes"),
        (lambda c: c.pop("models"), "models"),
    ],
)
def test_schema_errors_name_the_key(mutate, needle):
    cfg = copy.deepcopy(shipped())
    mutate(cfg)
    with pytest.raises(WorkflowError) as err:
        validate(cfg, SCHEMA, set_default=True)
    assert needle in str(err.value)


def test_snakemake_reports_a_bad_key_before_running_anything(tmp_path):
    cfg = shipped()
    cfg["backends"]["torch"]["warmup"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--directory", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    assert "warmup" in out.stdout + out.stderr


def test_unknown_model_name_is_a_clear_error():
    from ngbench.jobs import settings as study_settings

    with pytest.raises(ValueError, match="unknown model 'gpt3'"):
        study_settings.model_settings({"models": {"gpt3": None}}, "gpt3")


def test_paper_config_undoes_every_truncation():
    from snakemake.utils import update_config

    cfg = shipped()
    update_config(cfg, yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
    validate(cfg, SCHEMA, set_default=True)
    from ngbench.jobs import settings as study_settings

    for model, over in cfg["models"].items():
        if over.get("figures") is False:
            continue  # Table I's debug-size variants
        s = study_settings.model_settings(cfg, model)
        assert s["layers"] is None, model
        assert s["batch_sizes"] == [1, 2, 4, 8], model
    assert cfg["backends"]["torch"]["profile_iterations"] == 50
    assert study_settings.model_settings(cfg, "gpt2-xl")["seq_len"] == 512
    assert study_settings.model_settings(cfg, "llama2")["seq_len"] == 2048


def test_shipped_config_covers_the_seventeen_paper_models():
    from ngbench.jobs import settings as study_settings

    cfg = shipped()
    shown = [m for m, o in cfg["models"].items() if not (o and o.get("figures") is False)]
    assert len(shown) == 17
    bases = {study_settings.model_settings(cfg, m)["spec"].name for m in cfg["models"]}
    assert bases == set(shown) | {"llama3"}  # Llama-3-8B: the quantization study's model (fig9), not in fig6


def test_gpu_smoke_config_on_top_of_the_shipped_one():
    """config/gpu-smoke.yaml is used as --configfile on top of config.yaml (Snakemake deep-merges them)."""

    def merge(base, over):
        for key, value in over.items():
            base[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) else value
        return base

    cfg = merge(shipped(), yaml.safe_load((REPO / "config" / "gpu-smoke.yaml").read_text()))
    validate(cfg, SCHEMA, set_default=True)
    assert cfg["platforms"]["gpu"]["device"] == "cuda"  # the cpu platform stays, but gpu_smoke draws none of it
    assert set(cfg["only_models"]) <= set(cfg["models"])
    assert set(cfg["backends"]["inductor"]["models"]) == {"swin-t", "gpt2"}  # two cold compiles: the longest part


@pytest.mark.parametrize("section", ["models", "platforms", "custom_models"])
@pytest.mark.parametrize("name", ["..", "../x", "a/b", ".hidden", ""])
def test_names_that_could_leave_results_are_rejected(section, name):
    cfg = {"models": {"gpt2": None}}
    cfg[section] = {**cfg.get(section, {}), name: {"device": "cpu"} if section == "platforms" else None}
    with pytest.raises(Exception, match="does not match") as err:
        validate(cfg, SCHEMA, set_default=True)
    assert repr(name) in str(err.value) or name in str(err.value)
