"""datasets.options: one field description gives the flag, the type check, the bounds and the
JSON form; validation happens on construction, wherever the values come from."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from datasets.errors import UserError
from datasets.options import (Options, add_arguments, from_args, option, parse_comma_list, parse_none_or_float,
                              path_fields, run_defining)


@dataclass(frozen=True, kw_only=True)
class Base(Options):
    lr: float = option(1e-3, "learning rate", gt=0, defines_run=True)
    mode: str = option("a", "mode", choices=("a", "b"))
    steps: int | None = option(None, "steps", min=1)
    alpha: float | None = option(1.0, "alpha or none", parse=parse_none_or_float, gt=0)


@dataclass(frozen=True, kw_only=True)
class Config(Base):
    data: str = option(help="data directory", path=True, defines_run=True)
    extra: list[str] = option(help="extra sets", repeat=True, path=True, default_factory=list)
    names: list[str] | None = option(None, "names", parse=parse_comma_list)
    sizes: tuple[int, ...] = option((1, 2), "sizes")
    attention: bool = option(True, "no attention", flag="--no-attention")
    quiet: bool = option(False, "quiet")
    secret: int = option(3, "not on the command line", cli=False, max=5)

    def check(self) -> None:
        if self.mode == "b" and self.steps is None:
            raise UserError("mode b needs --steps")


def test_types_choices_bounds_and_cross_field_rules():
    from pathlib import Path

    cfg = Config(data=Path("/d"), sizes=[3, 4], lr=1)
    assert cfg.data == "/d" and cfg.sizes == (3, 4) and isinstance(cfg.lr, float)
    for kw, words in [({"lr": 0.0}, "lr (--lr) must be > 0"), ({"mode": "c"}, "must be one of a, b"),
                      ({"steps": 1.5}, "must be an integer"), ({"steps": True}, "must be an integer"),
                      ({"sizes": [1, "x"]}, "list of"), ({"secret": 6}, "secret must be ≤ 5"),
                      ({"lr": float("nan")}, "finite"), ({"mode": "b"}, "mode b needs --steps"),
                      ({"data": None}, "data (--data) must be a string")]:
        with pytest.raises(UserError) as exc:
            Config(**{"data": "d", **kw})
        assert words in str(exc.value) and "\n" not in str(exc.value)
    assert Config(data="d", alpha=None).alpha is None and Config(data="d", names="x,y").names == ["x", "y"]


def test_json_round_trip_unknown_and_missing_keys():
    cfg = Config(data="d", extra=["e1"], sizes=(5,))
    assert Config.from_json(cfg.to_json()) == cfg and cfg.to_json()["sizes"] == [5]
    with pytest.raises(UserError, match="unknown key.*colour"):
        Config.from_json({**cfg.to_json(), "colour": 1}, where="x.json")
    assert Config.from_json({**cfg.to_json(), "colour": 1}, known_only=True) == cfg
    with pytest.raises(UserError, match="missing data"):
        Config.from_json({})


def test_command_line_from_the_same_description(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser, Config, required=("data",))
    flags = {s for a in parser._actions for s in a.option_strings}
    assert {"--data", "--extra", "--no-attention", "--quiet", "--lr", "--alpha", "--names"} <= flags
    assert "--secret" not in flags
    args = parser.parse_args(["--data", "D", "--extra", "e1", "--extra", "e2", "--no-attention", "--alpha", "none",
                              "--names", "a,b", "--lr", "0.5"])
    cfg = from_args(Config, args, base={"mode": "a", "lr": 9.0})
    assert (cfg.extra, cfg.attention, cfg.alpha, cfg.names, cfg.lr, cfg.quiet) == (["e1", "e2"], False, None, ["a", "b"], 0.5, False)
    assert from_args(Config, parser.parse_args(["--data", "D"]), base={"lr": 9.0}).lr == 9.0   # flags left out keep the base
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "D", "--mode", "z"])
    help_text = parser.format_help()
    assert "(default 0.001)" in help_text and help_text.index("--data") < help_text.index("--lr")   # own fields first


def test_run_defining_and_path_fields():
    assert run_defining(Config) == ("lr", "data")
    assert path_fields(Config) == ("data", "extra")
