"""The bundle side of a study without training: study.json, placeholders, the overrides of each run, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ignite.engine import Engine
from monai.bundle import ConfigParser

import monai_ssl.study.runner as runner_module
from monai_ssl.data import LabelBudgetError, split_labeled, train_val_datalists
from monai_ssl.data.labeled_pool import require_unlabeled_pool
from monai_ssl.study import (
    BundleRunner,
    Cell,
    TrainingStepCounter,
    label_budget_error,
    load_study_spec,
    parse_fractions,
    parse_overrides,
    parse_shots,
    run_bundle,
    skip_reason,
)
from monai_ssl.study.runner import applicable_overrides, read_metrics
from monai_ssl.study.spec import fill

REPO = Path(__file__).resolve().parents[2]
OCT = REPO / "bundles" / "oct_byol_pseudolabel"


def test_the_oct_bundle_describes_its_protocols():
    spec = load_study_spec(OCT)
    kinds = ("finetune", "linear_probe", "pseudolabel")
    methods = ("byol", "byol_plus", "dino", "cass")
    assert list(spec.protocols) == ["supervised", *(f"{m}_{k}" for m in methods for k in kinds)]
    assert spec.default_protocols == ("supervised", "byol_finetune", "byol_linear_probe", "byol_pseudolabel")
    assert (spec.method_key, spec.pretrain.default_method) == ("method", "byol")
    assert spec.protocols["supervised"].method is None
    for m in methods:  # every method's protocols: BYOL's configs and model files, their own encoder
        for k in kinds:
            protocol, byol = spec.protocols[f"{m}_{k}"], spec.protocols[f"byol_{k}"]
            assert protocol.method == m and protocol.pretrained
            assert (protocol.config_file, protocol.model_file, protocol.overrides) == (
                byol.config_file, byol.model_file, byol.overrides)
            assert protocol.description and "\n" not in protocol.description
    assert not spec.protocols["supervised"].pretrained
    assert all(spec.protocols[p].pretrained for p in ("byol_finetune", "byol_linear_probe", "byol_pseudolabel"))
    assert [f.name for f in spec.protocols["byol_pseudolabel"].config_file] == ["finetune.json", "pseudolabel.json"]
    assert all(f.is_file() for p in spec.protocols.values() for f in p.config_file)
    assert spec.baseline == "supervised" and dict(spec.metrics) == {"accuracy": ("accuracy",),
                                                                   "auc": ("macro_auc", "auc"),
                                                                   "recall": ("macro_recall",), "f1": ("macro_f1",)}
    assert spec.pretrain.encoder_key == "pretrained_encoder"
    assert spec.skip_errors == ()  # label budgets are recognised by their type, not by text
    assert (spec.epochs_key, spec.steps_key, spec.train_handlers_id) == ("num_epochs", "num_steps", "train#handlers")


def test_the_bundled_studies_list_no_budget_messages():
    for bundle in ("oct_byol_pseudolabel", "isic_cross_teaching"):
        raw = json.loads((REPO / "bundles" / bundle / "configs" / "study.json").read_text())
        assert "skip_errors" not in raw, bundle


def _write_study(tmp_path, study: dict) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    for name in ("train.json", "evaluate.json"):
        (configs / name).write_text("{}")
    (configs / "study.json").write_text(json.dumps(study))
    return tmp_path


def _study(**changes):
    study = {
        "label_budget": {"fraction": {"labeled_fraction": "{fraction}"}},
        "pretrain": {"config_file": ["train.json"], "encoder_file": "{cell_dir}/encoder.pt", "encoder_key": "enc"},
        "evaluate": {"config_file": "evaluate.json", "metrics_file": "{cell_dir}/m.json"},
        "protocols": {"p": {"config_file": ["train.json"], "model_file": "{cell_dir}/model.pt", "pretrained": True}},
        "metrics": {"accuracy": "accuracy"},
    }
    study.update(changes)
    return study


@pytest.mark.parametrize("changes, message", [
    ({"pretrain": None}, r"protocol\(s\) \['p'\] are 'pretrained' but there is no 'pretrain' section"),
    ({"baseline": "q"}, "baseline 'q' is not one of the protocols"),
    ({"protocols": {"p": {"config_file": ["nope.json"], "model_file": "m"}}}, "config file.*not found.*nope.json"),
    ({"protocols": {"p": {"config_file": ["train.json"]}}}, "protocols.p: missing key 'model_file'"),
    ({"protocols": {}}, "'protocols' must name at least one protocol"),
    ({"metrics": {}}, "'metrics' must name at least one metric"),
    ({"label_budget": {"percent": {}}}, "label_budget must map 'fraction' and/or 'shots'"),
    ({"skip_errors": [1]}, "skip_errors must be a list of non-empty message starts"),
    ({"skip_errors": {"a": "b"}}, "skip_errors must be a list of non-empty message starts"),
    ({"train_handlers_id": ""}, "train_handlers_id must be a config id"),
    ({"train_handlers_id": ["train#handlers"]}, "train_handlers_id must be a config id"),
    ({"protocols": {"p": {"config_file": ["train.json"], "model_file": "m", "pretrained": True, "method": "dino"}}},
     r"protocols.p.*method 'dino' is set but 'pretrain' has no method_key"),
    ({"protocols": {"s": {"config_file": ["train.json"], "model_file": "m", "method": "dino"}}},
     r"protocols.s.*method 'dino' is set but the protocol is not 'pretrained'"),
    ({"protocols": {"p": {"config_file": ["train.json"], "model_file": "m", "pretrained": True,
                          "method": "../x"}}}, r"protocols.p.method: a method must be a name"),
    ({"protocols": {"p": {"config_file": ["train.json"], "model_file": "m", "pretrained": True,
                          "method": "seed_1"}}}, r"protocols.p.method: a method must be a name .*not seed_<n>"),
    ({"default_protocols": ["p", "q"]}, r"default_protocols \['p', 'q'\] must name .*; unknown: \['q'\]"),
    ({"default_protocols": ["p", "p"]}, r"default_protocols \['p', 'p'\] must name each of its protocols once"),
    ({"default_protocols": []}, "default_protocols must be a non-empty list of protocol names"),
    ({"default_protocols": "p"}, "default_protocols must be a non-empty list of protocol names"),
    ({"protocols": {"p": {"config_file": ["train.json"], "model_file": "m", "label_free": "yes"}}},
     r"study.json protocols.p.label_free: must be true or false, got \"yes\""),
    ({"protocols": {"p": {"config_file": ["train.json"], "model_file": "m", "label_free": 1}}},
     r"protocols.p.label_free: must be true or false, got 1"),
])
def test_bad_study_files_are_named(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        load_study_spec(_write_study(tmp_path, _study(**changes)))


def _methods_study(**pretrain):
    return _study(pretrain={"config_file": ["train.json"], "encoder_file": "{cell_dir}/encoder.pt",
                            "encoder_key": "enc", "method_key": "method", **pretrain},
                  protocols={"s": {"config_file": ["train.json"], "model_file": "m"},
                             "p": {"config_file": ["train.json"], "model_file": "m", "pretrained": True},
                             "d": {"config_file": ["train.json"], "model_file": "m", "pretrained": True,
                                   "method": "dino"}})


def test_label_free_is_read_and_defaults_to_false(tmp_path):
    protocols = {"picie": {"config_file": ["train.json"], "model_file": "m", "label_free": True},
                 "s": {"config_file": ["train.json"], "model_file": "m"}}
    spec = load_study_spec(_write_study(tmp_path, _study(protocols=protocols)))
    assert {n: p.label_free for n, p in spec.protocols.items()} == {"picie": True, "s": False}


def test_protocols_get_their_method_or_the_default_one(tmp_path):
    spec = load_study_spec(_write_study(tmp_path, _methods_study(default_method="byol")))
    assert {n: p.method for n, p in spec.protocols.items()} == {"s": None, "p": "byol", "d": "dino"}
    assert spec.method_key == "method" and spec.default_protocols is None
    with pytest.raises(ValueError, match=r"protocols.p: a pretrained protocol needs a 'method' \(or set "
                                         r"pretrain.default_method\), since pretrain.method_key is 'method'"):
        load_study_spec(_write_study(tmp_path, _methods_study()))
    with pytest.raises(ValueError, match="pretrain: method_key must be the config key"):
        load_study_spec(_write_study(tmp_path, _methods_study(method_key=3, default_method="byol")))


def test_the_steps_key_and_the_handlers_of_the_count_may_be_renamed_or_left_out(tmp_path):
    spec = load_study_spec(_write_study(tmp_path, _study(steps_key="max_iterations", train_handlers_id=None)))
    assert spec.steps_key == "max_iterations" and spec.train_handlers_id is None


def test_missing_or_broken_study_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no study description"):
        load_study_spec(tmp_path)
    bundle = _write_study(tmp_path, {})
    (bundle / "configs" / "study.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_study_spec(bundle)


def test_fill_placeholders():
    values = {"cell_dir": "/s/c", "fraction": 0.1, "seed": 3}
    assert fill("{fraction}", values) == 0.1  # a whole placeholder keeps its type
    assert fill({"a": ["{cell_dir}/models", "seed_{seed}"], "b": None}, values) == {"a": ["/s/c/models", "seed_3"],
                                                                                    "b": None}
    assert fill("$dict({'a': 1})", values) == "$dict({'a': 1})"  # braces around no bare name stay
    with pytest.raises(KeyError, match=r"unknown placeholder\(s\) \['ckpt'\]"):
        fill("{ckpt}/x", values)


def _wrapped(error: BaseException | str) -> RuntimeError:
    """The error MONAI raises when a config expression raised ``error`` (a message: a plain ``ValueError``)."""
    try:
        try:
            raise ValueError(error) if isinstance(error, str) else error
        except Exception as err:
            raise RuntimeError("Failed to evaluate ConfigExpression") from err
    except RuntimeError as wrapped:
        return wrapped


def _raised(call, *args, **kwargs) -> Exception:
    try:
        call(*args, **kwargs)
    except Exception as err:
        return err
    raise AssertionError("no error")


def test_skip_reason_recognises_a_budget_by_its_type_through_the_wrapping():
    data = [{"id": f"{c}{i}", "label": c} for c, n in ((0, 40), (1, 6)) for i in range(n)]
    too_few = _raised(split_labeled, data, fraction=0.01)
    too_many = _raised(split_labeled, data, per_class=9)
    no_pool = _raised(require_unlabeled_pool, [], 0.5)
    for error in (too_few, too_many, no_pool):
        assert isinstance(error, LabelBudgetError)
        assert label_budget_error(_wrapped(error)) is error
        assert skip_reason(_wrapped(error)) == str(error)  # no prefixes needed
    assert skip_reason(_wrapped(too_many)).startswith("split_labeled: per_class asks for 9 labeled items of class 1")
    # the same text in a plain ValueError is not a budget: only the type counts
    assert skip_reason(_wrapped(str(too_few))) is None
    # a mistake in the settings is not a budget that does not fit: the cell fails instead
    assert skip_reason(_wrapped(_raised(split_labeled, data, fraction=0.5, per_class=2))) is None
    assert skip_reason(ValueError("something else")) is None
    assert skip_reason(RuntimeError("out of memory")) is None


def test_a_value_error_raised_from_a_budget_error_is_not_a_budget(tmp_path):
    """train_val_datalists re-raises a validation hold-out a class cannot give: the same for every cell, so it fails."""
    archive = tmp_path / "tiny.npz"
    labels = np.array([0, 0, 0, 0, 1])
    np.savez(archive, **{f"{split}_{key}": value for split in ("train", "val", "test")
                         for key, value in (("images", np.zeros((5, 4, 4), np.uint8)), ("labels", labels))})
    error = _raised(train_val_datalists, archive, val_split=None, val_fraction=0.1, eval_split=None)
    assert str(error).startswith("cannot hold out val_fraction=0.1 of 'train' for validation")
    assert isinstance(error.__cause__, LabelBudgetError) and not isinstance(error, LabelBudgetError)
    assert label_budget_error(_wrapped(error)) is None and skip_reason(_wrapped(error)) is None


def test_listed_skip_errors_still_match_text():
    prefixes = ("the dataset has no",)
    assert skip_reason(_wrapped("the dataset has no test split"), prefixes) == "the dataset has no test split"
    assert skip_reason(_wrapped("something else"), prefixes) is None
    assert skip_reason(RuntimeError("the dataset has no test split"), prefixes) is None  # ValueErrors only


def test_run_bundle_runs_in_process_and_can_set_a_key_to_none(tmp_path):
    config = tmp_path / "configs" / "run.json"
    config.parent.mkdir()
    config.write_text(json.dumps({
        "imports": ["$import pathlib"], "x": 1, "y": 2, "out": "",
        "run": ["$pathlib.Path(@out).write_text(repr((@x, @y, @z)))"],
    }))
    out = tmp_path / "out.txt"
    workflow = run_bundle([config], {"x": None, "z": "new key", "out": str(out), "missing#nested": 5})
    assert out.read_text() == "(None, 2, 'new key')"  # None reaches the config; a new top-level key is added
    assert workflow.parser.get_parsed_content("x") is None


def test_nested_overrides_go_only_where_their_parent_exists():
    overrides = {"image_size": 64, "train#dataloader#shuffle": False}
    assert applicable_overrides([OCT / "configs" / "finetune.json"], overrides) == overrides
    assert applicable_overrides([OCT / "configs" / "evaluate.json"], overrides) == {"image_size": 64}


def test_nested_overrides_go_only_where_the_parent_can_take_them(tmp_path):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"train": {"handlers": [{"_target_": "A"}], "named": {}}}))
    overrides = {"train#handlers#counter": 1, "train#handlers#0": 2, "train#named#counter": 3}
    assert applicable_overrides([config], overrides) == {"train#handlers#0": 2, "train#named#counter": 3}


def test_read_metrics_takes_the_first_key_with_a_value(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"accuracy": 0.75, "macro_auc": None, "auc": 0.8}))
    assert read_metrics(path, {"accuracy": ["accuracy"], "auc": ["macro_auc", "auc"], "f1": ["f1"]}) == {
        "accuracy": 0.75, "auc": 0.8, "f1": None}
    with pytest.raises(FileNotFoundError, match="wrote no metrics file"):
        read_metrics(tmp_path / "none.json", {"accuracy": ["accuracy"]})


def test_read_metrics_reads_a_dotted_key_in_a_nested_object(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"macro_recall": 0.5, "saliency": {"in_mask_share_mean": 0.25, "method": "gradcam"}}))
    metrics = {"in_mask": ["saliency.in_mask_share_mean"], "method": ["saliency.method"], "absent": ["saliency.nope", "x.y"]}
    assert read_metrics(path, metrics) == {"in_mask": 0.25, "method": None, "absent": None}


class _Workflow:
    def __init__(self):
        self.parser = ConfigParser({"labeled": [1, 2, 3]})


def test_each_run_of_a_cell_gets_its_folders_budget_seed_and_the_user_overrides(tmp_path, monkeypatch):
    calls = []

    def fake_run_bundle(config_files, overrides):
        calls.append(([Path(f).name for f in config_files], dict(overrides)))
        counter = overrides.get("train#handlers#study_step_counter")
        if counter is not None:  # the training's trainer takes it among its handlers: 5 iterations
            trainer = Engine(lambda engine, batch: None)
            counter.attach(trainer)
            trainer.run(range(5), max_epochs=1)
        if "evaluate.json" in calls[-1][0]:
            Path(overrides["output_dir"]).mkdir(parents=True)
            (Path(overrides["output_dir"]) / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "macro_auc": 0.6}))
        elif "train.json" in calls[-1][0]:
            Path(overrides["ckpt_dir"]).mkdir(parents=True)
            (Path(overrides["ckpt_dir"]) / "encoder.pt").write_text("e")
        else:
            Path(overrides["ckpt_dir"]).mkdir(parents=True)
            (Path(overrides["ckpt_dir"]) / "linear_probe_model.pt").write_text("m")
        return _Workflow()

    monkeypatch.setattr(runner_module, "run_bundle", fake_run_bundle)
    runner = BundleRunner(load_study_spec(OCT), tmp_path / "data.npz", num_epochs=7, pretrain_epochs=3,
                          overrides={"image_size": 64})
    encoder = runner.pretrain(tmp_path / "pretrain", seed=0, resume=True)
    assert encoder == tmp_path / "pretrain" / "models" / "encoder.pt"
    cell_dir = tmp_path / "cells" / "c"
    result = runner.run_cell(Cell("byol_linear_probe", parse_fractions("0.25")[0], 4), cell_dir, encoder)
    assert result == {"metrics": {"accuracy": 0.5, "auc": 0.6, "recall": None, "f1": None}, "n_labeled": 3, "steps": 5}

    (pre_files, pre), (train_files, train), (eval_files, evaluate) = calls
    assert pre_files == ["train.json"]
    assert pre["method"] == "byol"  # the study.json's default_method when none is given
    assert pre["num_epochs"] == 3 and pre["resume"] is True and pre["ckpt_dir"] == str(tmp_path / "pretrain" / "models")
    assert train_files == ["finetune.json", "linear_probe.json"]
    assert {k: train[k] for k in ("seed", "num_epochs", "labeled_fraction", "labeled_per_class", "pretrained_encoder",
                                  "ckpt_dir", "output_dir", "dataset_dir", "image_size", "bundle_root")} == {
        "seed": 4, "num_epochs": 7, "labeled_fraction": 0.25, "labeled_per_class": None,
        "pretrained_encoder": str(encoder), "ckpt_dir": f"{cell_dir}/models", "output_dir": f"{cell_dir}/runs",
        "dataset_dir": str(tmp_path / "data.npz"), "image_size": 64, "bundle_root": str(OCT)}
    assert isinstance(train["train#handlers#study_step_counter"], TrainingStepCounter)
    assert "num_steps" not in train and "num_steps" not in pre  # the length in epochs unless --num_steps
    assert not any(k.startswith("train#handlers#") for k in {**pre, **evaluate})  # only the cell's training
    assert eval_files == ["evaluate.json"]
    assert evaluate["model_file"] == f"{cell_dir}/models/linear_probe_model.pt"
    assert evaluate["output_dir"] == f"{cell_dir}/eval" and evaluate["split"] == "test"
    assert evaluate["image_size"] == 64 and "pretrained_encoder" not in evaluate


def test_supervised_cells_do_not_get_the_encoder_and_shots_set_a_count(tmp_path, monkeypatch):
    seen = {}

    def fake_run_bundle(config_files, overrides):
        seen.update(overrides)
        raise ValueError("split_labeled: stop here")

    monkeypatch.setattr(runner_module, "run_bundle", fake_run_bundle)
    runner = BundleRunner(load_study_spec(OCT))
    with pytest.raises(ValueError):
        runner.run_cell(Cell("supervised", parse_shots("5")[0], 0), tmp_path, tmp_path / "encoder.pt")
    assert "pretrained_encoder" not in seen and "num_epochs" not in seen and "dataset_dir" not in seen
    assert seen["labeled_per_class"] == 5 and seen["labeled_fraction"] is None  # shots instead of a fraction


def test_with_num_steps_each_cell_training_gets_it_and_pretraining_keeps_its_epochs(tmp_path, monkeypatch):
    calls = []

    def fake_run_bundle(config_files, overrides):
        calls.append(([Path(f).name for f in config_files], dict(overrides)))
        folder = Path(overrides["output_dir"] if "evaluate.json" in calls[-1][0] else overrides["ckpt_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("encoder.pt", "finetune_model.pt"):
            (folder / name).write_text("x")
        (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
        return _Workflow()

    monkeypatch.setattr(runner_module, "run_bundle", fake_run_bundle)
    runner = BundleRunner(load_study_spec(OCT), num_steps=300, pretrain_epochs=2)
    encoder = runner.pretrain(tmp_path / "pretrain", seed=0)
    result = runner.run_cell(Cell("byol_finetune", parse_fractions("0.5")[0], 1), tmp_path / "cell", encoder)
    (_, pre), (_, train), (_, evaluate) = calls
    assert pre["num_epochs"] == 2 and "num_steps" not in pre
    assert train["num_steps"] == 300 and "num_epochs" not in train
    assert "num_steps" not in evaluate and "num_epochs" not in evaluate
    assert result["steps"] is None  # the fake never attached the counter: no count rather than a wrong one
    assert BundleRunner(load_study_spec(OCT), num_steps=300).pretrain_epochs is None  # the bundle's default


def test_num_steps_excludes_num_epochs_and_is_not_an_override():
    with pytest.raises(ValueError, match=r"num_epochs \(3\) and num_steps \(300\): give one of them"):
        BundleRunner(load_study_spec(OCT), num_epochs=3, num_steps=300)
    with pytest.raises(ValueError, match=r"'num_steps' is set by the study for every run \(use --num_steps\)"):
        BundleRunner(load_study_spec(OCT), overrides={"num_steps": 300})


def test_pretraining_gets_its_method(tmp_path, monkeypatch):
    calls = []

    def fake_run_bundle(config_files, overrides):
        calls.append(dict(overrides))
        Path(overrides["ckpt_dir"]).mkdir(parents=True)
        (Path(overrides["ckpt_dir"]) / "encoder.pt").write_text("e")

    monkeypatch.setattr(runner_module, "run_bundle", fake_run_bundle)
    runner = BundleRunner(load_study_spec(OCT))
    encoder = runner.pretrain(tmp_path / "pretrain" / "dino" / "seed_2", seed=2, method="dino")
    assert encoder == tmp_path / "pretrain" / "dino" / "seed_2" / "models" / "encoder.pt"
    assert calls[0]["method"] == "dino" and calls[0]["seed"] == 2 and "resume" not in calls[0]
    (tmp_path / "plain").mkdir()
    spec = load_study_spec(_write_study(tmp_path / "plain", _study()))  # no method_key
    with pytest.raises(ValueError, match="method 'dino': the study of .* has no pretrain.method_key"):
        BundleRunner(spec).pretrain(tmp_path / "x", seed=0, method="dino")
    assert len(calls) == 1


def test_user_overrides_may_not_set_what_the_study_sets():
    with pytest.raises(ValueError, match=r"'method' is set by the study for every run \(use --protocols: each "
                                         r"protocol's study.json 'method' picks its pre-training\)"):
        BundleRunner(load_study_spec(OCT), overrides={"method": "dino"})
    with pytest.raises(ValueError, match=r"'seed' is set by the study for every run \(use --seeds\).*"
                                         r"'split' is set by the study"):
        BundleRunner(load_study_spec(OCT), overrides={"seed": 1, "split": "val", "image_size": 64})
    with pytest.raises(ValueError, match=r"'labeled_fraction' is set by the study .*--fractions or --shots"):
        BundleRunner(load_study_spec(OCT), overrides={"labeled_fraction": 0.5})


def test_parse_overrides():
    assert parse_overrides(["image_size=64", "amp=false", "device=cuda:1", "x=null", '{"batch_size": 32}',
                            "image_size=96"]) == {"image_size": 96, "amp": False, "device": "cuda:1", "x": None,
                                                  "batch_size": 32}
    for bad in ("image_size", "=3", "{oops", "[1, 2]"):
        with pytest.raises(ValueError, match="--override"):
            parse_overrides([bad])
