"""A bundle's study description (``configs/study.json``): which configs make each protocol, and where files go.

The study engine knows nothing of a particular bundle. The bundle says, in ``configs/study.json``:

- ``protocols``: name -> ``config_file`` (the bundle's configs, merged in order), ``pretrained``
  (whether the protocol starts from the study's pre-trained encoder), ``model_file`` (the weights
  the evaluation reads) and optional ``overrides``, ``evaluate_overrides`` (added to the
  evaluation's overrides for this protocol, e.g. which architecture its model file holds),
  ``description`` and, for a ``pretrained`` protocol, ``method``: the pre-training method its
  encoder comes from (``pretrain.default_method`` when left out; only with ``pretrain.method_key``),
  and ``label_free`` (optional, default false): the protocol trains on no label at all (e.g. PiCIE,
  Cho et al. CVPR 2021, clustering), so it runs only in the study's fraction-0 column
  (``--fractions 0,...``) and every other protocol only at budgets above 0; its cells get no
  ``label_budget`` overrides and record ``n_labeled`` 0. It may also be ``pretrained``;
- ``default_protocols`` (optional, default all): the protocols a study runs when none are chosen
  (``--protocols``), e.g. today's set while the per-method ones are opt-in;
- ``default_fractions``, ``default_seeds`` (optional, default ``"0.1,0.5,1.0"`` and ``"0,1,2"``): the label
  fractions and seeds when ``--fractions``/``--shots`` and ``--seeds`` are not given (a paper's design,
  e.g. S4MI's ``"0.1,1.0"`` and five seeds);
- ``pretrain``: the config(s) that pre-train the encoder (once per seed, or once per study with
  shared pre-training), ``encoder_file`` (what it writes), ``encoder_key`` (the key that hands it
  to a protocol), ``resume_overrides`` (how to continue a killed pre-training) and, to compare
  pre-training methods, ``method_key`` (the config key that selects the method, e.g. ``"method"``
  for ``--method byol|byol_plus|dino|cass``) with ``default_method`` (the method of a ``pretrained``
  protocol that names none). With a ``method_key``, the study pre-trains once per (method, seed)
  its chosen protocols need, each with ``{method_key: method}`` added to the pre-training's
  overrides (see :func:`~monai_ssl.study.engine.run_study` for the folders);
- ``evaluate``: the config(s) that compute the test metrics of a trained model and ``metrics_file``
  (the JSON they write);
- ``common_overrides``: set on every run of a cell (where its models and logs go);
- ``label_budget``: the overrides that set a label fraction (``"fraction"``) or a number of labeled
  images per class (``"shots"``);
- ``seed_key``, ``epochs_key``, ``steps_key``, ``dataset_key``: the keys of the seed, the run length in
  epochs (``--num_epochs``, ``--pretrain_epochs``) and in optimizer steps (``--num_steps``; default
  ``num_steps``: every protocol's configs must declare it for ``--num_steps``), and the dataset;
- ``train_handlers_id`` (optional, default ``train#handlers``): the named handlers of a protocol's
  trainer, where the study adds one that counts the steps the cell trained (``null``: count none);
- ``labeled_count_id``: a config id whose length is the number of labeled training items;
- ``skip_errors`` (optional, default none): starts of ``ValueError`` messages that also mean "this
  cell cannot run on this data", so the cell is skipped rather than failed. A label budget that
  does not fit the data (a fraction that leaves a class without labels, more shots than a class
  has, no unlabeled pool left) needs no entry: the data functions raise
  :class:`~monai_ssl.data.LabelBudgetError`, which the study recognises by its type. Any other
  error fails the cell;
- ``metrics``: name -> key(s) of ``metrics_file`` (the first key present with a value is used);
- ``baseline``: the protocol the others are compared with, seed by seed.

Strings may hold placeholders ``{name}``: ``{bundle_root}``, ``{cell_dir}``, ``{seed}``,
``{fraction}`` / ``{shots}``, the string values of ``common_overrides`` (``{ckpt_dir}``, ...) and, in
``evaluate``, ``{model_file}``. A string that is exactly one placeholder takes the value's type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["EvaluateStep", "PretrainStep", "Protocol", "StudySpec", "check_method_name", "fill", "load_study_spec"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHOD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*")
_SEED_FOLDER = re.compile(r"seed_\d+")


def check_method_name(value: Any, where: str) -> str:
    """A pre-training method's name, which also names its folder (``pretrain/<method>/``).

    Raises:
        ValueError: not a string of letters, digits, ``_``, ``+`` and ``-`` starting with a letter, or
            a name of the form ``seed_<n>`` (the name of a seed's folder); ``where`` is named.
    """
    if not isinstance(value, str) or not _METHOD_NAME.fullmatch(value) or _SEED_FOLDER.fullmatch(value):
        raise ValueError(f"{where}: a method must be a name of letters, digits, '_', '+' and '-' starting with a "
                         f"letter (not seed_<n>), e.g. \"dino\"; got {json.dumps(value)}")
    return value


def fill(value: Any, values: Mapping[str, Any], where: str = "study.json") -> Any:
    """Replace ``{name}`` placeholders in ``value`` (a string, or a list/dict of them) by ``values[name]``.

    A string that is exactly ``"{name}"`` becomes ``values[name]`` itself (an int stays an int);
    other strings get the value's text. Braces that do not enclose a bare name (JSON, set literals
    in a MONAI expression) are left alone.

    Raises:
        KeyError: a placeholder names no known value; the message names ``where`` and the known names.
    """
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        names = _PLACEHOLDER.findall(value)
        unknown = sorted(set(names) - set(values))
        if unknown:
            raise KeyError(f"{where}: unknown placeholder(s) {unknown} in {value!r}; known: {sorted(values)}")
        if whole:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), value)
    if isinstance(value, Mapping):
        return {k: fill(v, values, where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [fill(v, values, where) for v in value]
    return value


@dataclass(frozen=True)
class Protocol:
    """One way to train a model on the labeled subset (a row of the study's table)."""

    name: str
    config_file: tuple[Path, ...]
    model_file: str
    pretrained: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    evaluate_overrides: Mapping[str, Any] = field(default_factory=dict)
    method: str | None = None
    """The pre-training method of the encoder (``None``: not pretrained, or a spec without ``method_key``)."""
    label_free: bool = False
    """Trains on no label at all: runs only at label fraction 0, without the ``label_budget`` overrides."""


@dataclass(frozen=True)
class PretrainStep:
    """Self-supervised pre-training, run once per seed (or once per study with shared pre-training)
    and, with a ``method_key``, once per method its protocols use."""

    config_file: tuple[Path, ...]
    encoder_file: str
    encoder_key: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    resume_overrides: Mapping[str, Any] = field(default_factory=dict)
    method_key: str | None = None
    default_method: str | None = None


@dataclass(frozen=True)
class EvaluateStep:
    """Test-split evaluation of a trained model."""

    config_file: tuple[Path, ...]
    metrics_file: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    """Everything the engine needs to know about a bundle; see the module docstring."""

    bundle_dir: Path
    protocols: Mapping[str, Protocol]
    evaluate: EvaluateStep
    metrics: Mapping[str, tuple[str, ...]]
    pretrain: PretrainStep | None = None
    common_overrides: Mapping[str, Any] = field(default_factory=dict)
    label_budget: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed_key: str = "seed"
    epochs_key: str = "num_epochs"
    steps_key: str = "num_steps"
    dataset_key: str = "dataset_dir"
    train_handlers_id: str | None = "train#handlers"
    labeled_count_id: str | None = None
    skip_errors: tuple[str, ...] = ()
    baseline: str | None = None
    name: str = ""
    default_protocols: tuple[str, ...] | None = None
    default_fractions: str | None = None
    default_seeds: str | None = None

    @property
    def method_key(self) -> str | None:
        """The config key that selects the pre-training method (``None``: one method, not compared)."""
        return None if self.pretrain is None else self.pretrain.method_key


def _require(section: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in section:
        raise ValueError(f"{where}: missing key {key!r}")
    return section[key]


def _config_files(section: Mapping[str, Any], configs: Path, where: str) -> tuple[Path, ...]:
    files = _require(section, "config_file", where)
    files = [files] if isinstance(files, str) else files
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise ValueError(f"{where}: config_file must be a file name or a non-empty list of them, got {files!r}")
    paths = tuple((configs / f).resolve() for f in files)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"{where}: config file(s) not found: {missing}")
    return paths


def _mapping(section: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = section.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: {key} must be an object, got {type(value).__name__}")
    return dict(value)


def _skip_errors(value: Any, where: str) -> tuple[str, ...]:
    """The ``skip_errors`` entry: a list of message starts (a single string is one start)."""
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: skip_errors must be a list of non-empty message starts, got {json.dumps(value)}")
    return tuple(value)


def _flag(section: Mapping[str, Any], key: str, where: str) -> bool:
    """A true/false entry of ``section`` (false when absent).

    Raises:
        ValueError: the entry is not a JSON boolean; ``where`` and ``key`` are named.
    """
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key}: must be true or false, got {json.dumps(value)}")
    return value


def _optional_id(value: Any, where: str) -> str | None:
    """The ``train_handlers_id`` entry: a config id, or ``None``."""
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{where}: train_handlers_id must be a config id (e.g. 'train#handlers') or null, got "
                         f"{json.dumps(value)}")
    return value


def load_study_spec(bundle_dir: str | Path, study_file: str = "configs/study.json") -> StudySpec:
    """Read and check ``<bundle_dir>/<study_file>``.

    Config file names are relative to the study file's folder and must exist.

    Raises:
        FileNotFoundError: no study file in the bundle.
        ValueError: a missing or malformed entry, named with its place in the file.
    """
    bundle_dir = Path(bundle_dir).resolve()
    path = bundle_dir / study_file
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the bundle {bundle_dir} has no study description (see monai_ssl.study.spec)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    configs = path.parent
    where = str(path)

    protocols_raw = _mapping(raw, "protocols", where)
    if not protocols_raw:
        raise ValueError(f"{where}: 'protocols' must name at least one protocol")
    protocols = {}
    for name, entry in protocols_raw.items():
        at = f"{where} protocols.{name}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{at}: must be an object")
        protocols[name] = Protocol(
            name=name,
            config_file=_config_files(entry, configs, at),
            model_file=str(_require(entry, "model_file", at)),
            pretrained=bool(entry.get("pretrained", False)),
            overrides=_mapping(entry, "overrides", at),
            description=str(entry.get("description", "")),
            evaluate_overrides=_mapping(entry, "evaluate_overrides", at),
            method=None if entry.get("method") is None else check_method_name(entry["method"], f"{at}.method"),
            label_free=_flag(entry, "label_free", at),
        )

    pretrain = None
    if raw.get("pretrain") is not None:
        section, at = raw["pretrain"], f"{where} pretrain"
        pretrain = PretrainStep(
            config_file=_config_files(section, configs, at),
            encoder_file=str(_require(section, "encoder_file", at)),
            encoder_key=str(_require(section, "encoder_key", at)),
            overrides=_mapping(section, "overrides", at),
            resume_overrides=_mapping(section, "resume_overrides", at),
            method_key=_method_key(section.get("method_key"), at),
            default_method=(None if section.get("default_method") is None
                            else check_method_name(section["default_method"], f"{at}.default_method")),
        )
    needs = [p.name for p in protocols.values() if p.pretrained]
    if needs and pretrain is None:
        raise ValueError(f"{where}: protocol(s) {needs} are 'pretrained' but there is no 'pretrain' section")
    protocols = {name: _with_method(p, pretrain, f"{where} protocols.{name}") for name, p in protocols.items()}

    section, at = _require(raw, "evaluate", where), f"{where} evaluate"
    evaluate = EvaluateStep(
        config_file=_config_files(section, configs, at),
        metrics_file=str(_require(section, "metrics_file", at)),
        overrides=_mapping(section, "overrides", at),
    )

    metrics = {}
    for name, keys in _mapping(raw, "metrics", where).items():
        keys = [keys] if isinstance(keys, str) else keys
        if not isinstance(keys, list) or not keys:
            raise ValueError(f"{where} metrics.{name}: give a key of the metrics file or a list of them")
        metrics[name] = tuple(str(k) for k in keys)
    if not metrics:
        raise ValueError(f"{where}: 'metrics' must name at least one metric")

    budget = _mapping(raw, "label_budget", where)
    unknown = sorted(set(budget) - {"fraction", "shots"})
    if unknown or not budget or not all(isinstance(v, Mapping) for v in budget.values()):
        raise ValueError(
            f"{where}: label_budget must map 'fraction' and/or 'shots' to overrides, got {json.dumps(budget)}"
        )
    baseline = raw.get("baseline")
    if baseline is not None and baseline not in protocols:
        raise ValueError(f"{where}: baseline {baseline!r} is not one of the protocols {list(protocols)}")
    default_protocols = raw.get("default_protocols")
    if default_protocols is not None:
        if (not isinstance(default_protocols, list) or not default_protocols
                or not all(isinstance(p, str) for p in default_protocols)):
            raise ValueError(f"{where}: default_protocols must be a non-empty list of protocol names, got "
                             f"{json.dumps(default_protocols)}")
        unknown = [p for p in default_protocols if p not in protocols]
        if unknown or len(set(default_protocols)) != len(default_protocols):
            raise ValueError(f"{where}: default_protocols {default_protocols} must name each of its protocols once, "
                             f"from {list(protocols)}" + (f"; unknown: {unknown}" if unknown else ""))
        default_protocols = tuple(default_protocols)
    defaults = {}
    for key in ("default_fractions", "default_seeds"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{where}: {key} must be a comma-separated string such as \"0.1,1.0\", got {json.dumps(value)}")
        defaults[key] = value
    return StudySpec(
        bundle_dir=bundle_dir,
        protocols=protocols,
        evaluate=evaluate,
        metrics=metrics,
        pretrain=pretrain,
        common_overrides=_mapping(raw, "common_overrides", where),
        label_budget={k: dict(v) for k, v in budget.items()},
        seed_key=str(raw.get("seed_key", "seed")),
        epochs_key=str(raw.get("epochs_key", "num_epochs")),
        steps_key=str(raw.get("steps_key", "num_steps")),
        dataset_key=str(raw.get("dataset_key", "dataset_dir")),
        train_handlers_id=_optional_id(raw.get("train_handlers_id", "train#handlers"), where),
        labeled_count_id=raw.get("labeled_count_id"),
        skip_errors=_skip_errors(raw.get("skip_errors", []), where),
        baseline=baseline,
        name=str(raw.get("name", bundle_dir.name)),
        default_protocols=default_protocols,
        **defaults,
    )


def _method_key(value: Any, where: str) -> str | None:
    """The ``pretrain.method_key`` entry: a config key, or ``None``."""
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{where}: method_key must be the config key that selects the pre-training method "
                         f"(e.g. \"method\") or null, got {json.dumps(value)}")
    return value


def _with_method(protocol: Protocol, pretrain: PretrainStep | None, where: str) -> Protocol:
    """``protocol`` with its pre-training method resolved (``default_method`` when it names none).

    Raises:
        ValueError: a ``method`` on a protocol that is not ``pretrained``, or in a spec without
            ``pretrain.method_key``; or a ``pretrained`` protocol without a method when the spec
            has a ``method_key`` but no ``default_method``.
    """
    if not protocol.pretrained:
        if protocol.method is not None:
            raise ValueError(f"{where}: method {protocol.method!r} is set but the protocol is not 'pretrained' "
                             "(a method names where its encoder comes from; drop it or set \"pretrained\": true)")
        return protocol
    method_key = None if pretrain is None else pretrain.method_key
    if method_key is None:
        if protocol.method is not None:
            raise ValueError(f"{where}: method {protocol.method!r} is set but 'pretrain' has no method_key (the "
                             "config key that selects the pre-training method, e.g. \"method\")")
        return protocol
    method = protocol.method or pretrain.default_method  # type: ignore[union-attr]
    if method is None:
        raise ValueError(f"{where}: a pretrained protocol needs a 'method' (or set pretrain.default_method), since "
                         f"pretrain.method_key is {method_key!r}")
    return replace(protocol, method=method)
