"""The study's configuration: a profile, the datasets and the one seed, from a profile name and
an optional JSON or TOML config file, validated before any work starts (docs/DESIGN.md §8)."""
from __future__ import annotations

from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import re

from datasets.errors import UserError

from ..metrics.text import TextNormalization
from ..profiles import Profile, get_profile, profile_from_json

STANDIN_KINDS = {"rimes-like": ("fr", "ltr"), "arabic-like": ("ar", "rtl")}
_DS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the study: an offline stand-in (`kind`) or an imported real dataset."""

    name: str
    kind: str = "import"                 # "rimes-like" | "arabic-like" | "import"
    format: str | None = None            # importer format when kind == "import"
    path: str | None = None
    options: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {"name": self.name, "kind": self.kind}
        if self.kind == "import":
            d.update(format=self.format, path=self.path, options=dict(self.options))
        return d


@dataclass(frozen=True)
class StudyConfig:
    """Everything a study run depends on (the out dir and shard only say where and which part)."""

    profile: Profile
    datasets: tuple[DatasetSpec, ...]
    seed: int = 0
    gpus: int = 0                       # GPUs of this machine the study may use (stages run side by side)
    text: TextNormalization | None = None   # normalisation of the recognizers' test scoring (None: none)
    inception_weights: str | None = None    # pt_inception weights: Inception FID beside the judge's
    fid_features: str | None = None         # "htr": run a profile that requires Inception FID without it
    gpus_per_stage: int = 1             # GPUs of one trainer (torchrun DDP when > 1)

    def to_json(self) -> dict:
        out = {"profile": self.profile.to_json(), "datasets": [d.to_json() for d in self.datasets],
               "seed": self.seed, "gpus": self.gpus}
        if self.text is not None:        # absent when off, so studies without it keep their hashes
            out["text"] = self.text.to_json()
        for key in ("inception_weights", "fid_features"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.gpus_per_stage != 1:
            out["gpus_per_stage"] = self.gpus_per_stage
        return out


_TOP_KEYS = {"profile", "seed", "overrides", "datasets", "gpus", "text", "inception_weights", "fid_features",
             "gpus_per_stage"}
FID_FEATURES = ("htr", "inception")
_DS_KEYS = {"name", "kind", "format", "path", "options"}


def parse_text_options(obj, where: str) -> TextNormalization | None:
    """The config's `text` table (normalize, strip_diacritics, strip_punct); None when it changes nothing."""
    if obj is None:
        return None
    text = TextNormalization.from_json(obj, f"{where}: text")
    return text if text.active else None


def read_config_file(path) -> dict:
    """Parse a JSON or TOML study config into a dict, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file does not exist")
    import tomllib   # standard library (htraug needs Python ≥ 3.11, datasets.version)

    from datasets.files import read_text_file

    text = read_text_file(path, "config file")
    try:
        if path.suffix.lower() == ".toml":
            obj = tomllib.loads(text)
        else:
            obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML ({exc})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a table/object at the top level")
    return obj


# Builder / importer arguments the study sets itself (a config may not override them).
_STUDY_SET = {"kind", "fmt", "root", "out", "n_train", "n_val", "n_test", "height", "width", "seed",
              "show_progress", "overwrite"}


def _check_options(options, func, reserved: set[str], where: str, name: str) -> None:
    """A dataset's `options` must be a table of arguments the builder/importer `func` accepts."""
    import inspect

    if not isinstance(options, dict):
        raise UserError(f"{where}: dataset {name!r}: 'options' must be a table")
    params = set(inspect.signature(func).parameters)
    bad = sorted(k for k in options if k not in params or k in reserved)
    if bad:
        allowed = ", ".join(sorted(params - reserved)) or "none"
        raise UserError(f"{where}: dataset {name!r}: unknown or reserved option(s) {', '.join(bad)}; allowed: {allowed}")


def parse_dataset_entry(entry, where: str) -> DatasetSpec:
    """Validate one `datasets` entry: a stand-in name or {name, format, path, options}."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a dataset name or a table, got {type(entry).__name__}")
    bad = sorted(set(entry) - _DS_KEYS)
    if bad:
        raise UserError(f"{where}: unknown key(s) {', '.join(bad)}; known: {', '.join(sorted(_DS_KEYS))}")
    name = entry.get("name")
    if not isinstance(name, str) or not _DS_NAME.match(name):
        raise UserError(f"{where}: 'name' must be a simple name (letters, digits, . _ -), got {name!r}")
    kind = entry.get("kind") or (name if name in STANDIN_KINDS and "format" not in entry else "import")
    if kind in STANDIN_KINDS:
        extra = sorted(k for k in ("format", "path") if k in entry)
        if extra:
            raise UserError(f"{where}: stand-in dataset {name!r} takes no {', '.join(extra)}")
        from datasets.build import build_standin

        options = entry.get("options") or {}
        _check_options(options, build_standin, _STUDY_SET, where, name)
        return DatasetSpec(name=name, kind=kind, options=dict(options))
    if kind != "import":
        raise UserError(f"{where}: unknown kind {kind!r}; expected {', '.join(STANDIN_KINDS)} or import")
    from datasets.importers import FORMATS as IMPORT_FORMATS, import_dataset

    fmt = entry.get("format")
    if fmt not in IMPORT_FORMATS:
        raise UserError(f"{where}: dataset {name!r} needs 'format', one of {', '.join(IMPORT_FORMATS)} (got {fmt!r})")
    path = entry.get("path")
    if not path:
        raise UserError(f"{where}: dataset {name!r} needs 'path'")
    if not Path(path).exists():
        raise UserError(f"{where}: dataset {name!r}: path {path} does not exist")
    options = entry.get("options") or {}
    _check_options(options, import_dataset, _STUDY_SET, where, name)
    return DatasetSpec(name=name, kind="import", format=fmt, path=str(Path(path).resolve()), options=dict(options))


def load_study_config(profile: str | None = None, config_file=None, seed: int | None = None,
                      gpus: int | None = None, inception_weights=None, fid_features: str | None = None,
                      gpus_per_stage: int | None = None) -> StudyConfig:
    """Build and validate the study config (file values, overridden by command-line values; the
    Inception weights also from $HTRAUG_INCEPTION_WEIGHTS)."""
    obj = read_config_file(config_file) if config_file else {}
    where = str(config_file) if config_file else "config"
    bad = sorted(set(obj) - _TOP_KEYS)
    if bad:
        raise UserError(f"{where}: unknown key(s) {', '.join(bad)}; known: {', '.join(sorted(_TOP_KEYS))}")
    name = profile or obj.get("profile") or "quick"
    overrides = obj.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise UserError(f"{where}: 'overrides' must be a table of profile fields")
    try:
        prof = get_profile(name, overrides)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    entries = obj.get("datasets", list(prof.datasets))
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{where}: 'datasets' must be a non-empty list")
    specs = tuple(parse_dataset_entry(e, f"{where}: datasets[{i}]") for i, e in enumerate(entries))
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{where}: dataset name(s) {', '.join(dup)} appear twice")
    seed = obj.get("seed", 0) if seed is None else seed
    gpus = obj.get("gpus", 0) if gpus is None else gpus
    if not isinstance(seed, int) or seed < 0:
        raise UserError(f"{where}: seed must be a non-negative integer, got {seed!r}")
    if not isinstance(gpus, int) or gpus < 0:
        raise UserError(f"{where}: gpus must be a non-negative integer, got {gpus!r}")
    per_stage = obj.get("gpus_per_stage", 1) if gpus_per_stage is None else gpus_per_stage
    if not isinstance(per_stage, int) or per_stage < 1:
        raise UserError(f"{where}: gpus_per_stage must be a positive integer, got {per_stage!r}")
    weights, features = _fid_choice(prof, obj, inception_weights, fid_features, where)
    cfg = StudyConfig(profile=prof, datasets=specs, seed=seed, gpus=gpus, text=parse_text_options(obj.get("text"), where),
                      inception_weights=weights, fid_features=features, gpus_per_stage=per_stage)
    validate_study(cfg)
    return cfg


def _fid_choice(prof: Profile, obj: dict, weights, features, where: str) -> tuple[str | None, str | None]:
    """(Inception weights file, explicit FID features): the command line, then the config, then
    $HTRAUG_INCEPTION_WEIGHTS; a profile that requires Inception FID refuses to go without it
    unless the features are explicitly 'htr'."""
    from ..metrics.features import INCEPTION_ENV

    features = features if features is not None else obj.get("fid_features")
    if features is not None and features not in FID_FEATURES:
        raise UserError(f"{where}: fid_features must be one of {', '.join(FID_FEATURES)}, got {features!r}")
    weights = weights or obj.get("inception_weights") or os.environ.get(INCEPTION_ENV) or None
    if features == "htr":
        weights = None
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"{where}: inception weights {path} do not exist (the pytorch-fid pt_inception-2015-12-05 file)")
        weights = str(path.resolve())
    elif features == "inception" or (prof.requires_inception and features != "htr"):
        raise UserError(f"profile {prof.name}: its FIDs are the paper's Inception FIDs: pass --inception-weights FILE "
                        f"(pt_inception-2015-12-05-6726825d.pth; or set {INCEPTION_ENV}), or --fid-features htr to run "
                        "with the judge's features only (then not comparable with the paper's FID)")
    return weights, features


def validate_study(cfg: StudyConfig) -> None:
    """Reject sizes no study can satisfy, before any work starts (the profile checked its own)."""
    p = cfg.profile
    if any(d.kind != "import" for d in cfg.datasets):
        if p.fid_n > p.n_train:
            raise UserError(f"profile {p.name}: fid_n {p.fid_n} exceeds n_train {p.n_train} (FID needs that many real images)")
        if p.gs_n > p.n_train:
            raise UserError(f"profile {p.name}: gs_n {p.gs_n} exceeds n_train {p.n_train}")
        smallest = min(p.real_fractions)
        if int(smallest * p.n_train) < 1:
            raise UserError(f"profile {p.name}: real fraction {smallest} of {p.n_train} training images is empty")


def config_from_json(obj: dict) -> StudyConfig:
    """Rebuild a StudyConfig from its recorded JSON (results.json / study.json)."""
    specs = tuple(DatasetSpec(name=d["name"], kind=d.get("kind", "import"), format=d.get("format"),
                              path=d.get("path"), options=d.get("options") or {}) for d in obj["datasets"])
    return StudyConfig(profile=profile_from_json(obj["profile"]), datasets=specs, seed=obj.get("seed", 0),
                       gpus=obj.get("gpus", 0), text=parse_text_options(obj.get("text"), "config"),
                       inception_weights=obj.get("inception_weights"), fid_features=obj.get("fid_features"),
                       gpus_per_stage=obj.get("gpus_per_stage", 1))
