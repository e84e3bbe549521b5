"""Property-based tests of every parser a user's text reaches (issue 13).

Any config file, override or search space either loads or raises the package's own error with
exit code 2 (what the CLI prints as one line) — never another exception, which would reach the
user as a traceback. No Spark: the CLI cases all stop in the config loader, before Spark starts.

``pytest -s tests/test_properties.py`` prints how many inputs each property tried.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import json
import pathlib
import typing

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sparkdl_tune.cli import main
from sparkdl_tune.config.loader import load_config, read_yaml
from sparkdl_tune.config.schema import Config
from sparkdl_tune.errors import EXIT_BAD_INPUT, SparkdlTuneError
from sparkdl_tune.search.space import KINDS, SearchSpace
from sparkdl_tune.search.tuner import load_space

# Sized so the whole file takes well under a minute on a loaded 2-core machine.
FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

TRIED: collections.Counter = collections.Counter()  # property -> inputs tried
OUTCOMES: collections.Counter = collections.Counter()  # (property, loaded|error) -> count


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    total = sum(TRIED.values())
    print(f"\nproperty inputs tried: {total} in all")
    for name, n in sorted(TRIED.items()):
        print(f"  {name}: {n} ({OUTCOMES[name, 'loaded']} loaded, "
              f"{OUTCOMES[name, 'error']} refused with exit code 2)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("properties")


def loads_or_refuses(name: str, load: typing.Callable[[], typing.Any]) -> typing.Any:
    """Run ``load``: a result, or the package's error with exit code 2 and a one-line message."""
    TRIED[name] += 1
    try:
        result = load()
    except SparkdlTuneError as exc:
        OUTCOMES[name, "error"] += 1
        assert exc.exit_code == EXIT_BAD_INPUT, f"{type(exc).__name__}: {exc}"
        assert str(exc).strip(), "an error with no message"
        return exc
    OUTCOMES[name, "loaded"] += 1
    return result


# --- what users write -----------------------------------------------------------------------

def _dotted_keys(cls: type, prefix: str = "") -> dict[str, typing.Any]:
    """Every dotted key of the schema -> its type hint (sections included)."""
    out = {}
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        out[prefix + f.name] = hint
        inner = _dataclass_of(hint)
        if inner is not None:
            out.update(_dotted_keys(inner, f"{prefix}{f.name}."))
    return out


def _dataclass_of(hint: typing.Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    return next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), None)


KEYS = _dotted_keys(Config)
LITERALS = sorted({str(a) for hint in KEYS.values() for h in (hint, *typing.get_args(hint))
                   for a in typing.get_args(h) if typing.get_origin(h) is typing.Literal})

junk_key = st.text(max_size=12)
scalars = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=20) | st.sampled_from(LITERALS))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(junk_key | st.sampled_from(LITERALS) | st.integers(), inner, max_size=4),
    max_leaves=12)


def _for_hint(hint: typing.Any, depth: int) -> st.SearchStrategy:
    """Values that fit ``hint`` most of the time (so deep checks run), and junk."""
    inner = _dataclass_of(hint)
    if inner is not None and depth < 3:
        return section(inner, depth + 1) | values
    near = [st.integers(-3, 300), st.floats(-2, 2), st.sampled_from(LITERALS),
            st.lists(st.integers(-2, 600) | st.sampled_from(LITERALS), max_size=4)]
    return st.one_of(*near, values)


def section(cls: type, depth: int = 0) -> st.SearchStrategy:
    """A mapping shaped like the dataclass ``cls``: its own keys with fitting values, and junk."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    entry = st.sampled_from(names).flatmap(
        lambda name: st.tuples(st.just(name), _for_hint(hints[name], depth)))
    junk = st.tuples(junk_key, values)
    return st.lists(entry | junk, max_size=5).map(dict)


# YAML's own syntax, anchors, aliases, merge keys and tags included, strung together at random
YAML_TOKENS = [
    "training:", "model:", "search:", "space:", "spark:", "conf:", "data:", "execution:",
    "  epochs: ", "  learning_rate: ", "  units: ", "  metrics: ", "  space: ",
    "model.units: ", "training.epochs: ", "choice", "uniform", "int", "quniform", "loguniform",
    "fixed", "value: ", "\n", "  ", "- ", ": ", ", ", "[", "]", "{", "}", "&a ", "*a", "&b ",
    "*b", "<<: ", "? ", "!!str ", "!!int ", "!!float ", "!!binary ", "!!set ", "!!python/name:x ",
    "1", "-7", "0x1F", "1e999", "1" * 400, ".nan", ".inf", "~", "null", "yes", "off", "'",
    '"', "#", "---\n", "...\n", "|\n", ">\n", "%YAML 1.1\n", "2020-01-01", "5e-324",
]
yaml_like = st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=3), max_size=40).map(
    "".join)


def dump(data: typing.Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


# --- the config loader ----------------------------------------------------------------------

@FAST
@given(text=st.text(max_size=200) | yaml_like)
@example(text="training:\n  learning_rate: 1" + "0" * 400 + "\n")  # float() overflows
@example(text="[" * 3000 + "]" * 3000)  # deeper than PyYAML can recurse
@example(text="?")  # a key that is None
@example(text="1: 2\ntraining:\n  true: 3\n")  # keys that are not strings
@example(text="training:\n  metrics: &a [*a]\n")  # a list that holds itself
@example(text="search:\n  space: &a {x: *a}\n")  # a mapping that holds itself
def test_any_config_text_loads_or_is_refused(workdir, text):
    path = workdir / "job.yaml"
    path.write_text(text, encoding="utf-8")
    loads_or_refuses("config: read_yaml", lambda: read_yaml(path))
    cfg = loads_or_refuses("config: text", lambda: load_config(None, files=[path]))
    assert isinstance(cfg, (Config, SparkdlTuneError))


@FAST
@given(raw=st.binary(max_size=120))
@example(raw=b"training:\n  epochs: \xff\xfe\n")  # not UTF-8
def test_any_config_bytes_load_or_are_refused(workdir, raw):
    path = workdir / "job.yaml"
    path.write_bytes(raw)
    loads_or_refuses("config: bytes", lambda: load_config(None, files=[path]))


@FAST
@given(data=section(Config) | values)
@example(data={"training": {"learning_rate": 10**400}})
@example(data={"model": {"n_layers": 10**12}})  # a tuple of 10**12 widths
@example(data={"model": {"layer_units": 10**400, "shape": "funnel"}})  # int / 4 overflows
def test_any_config_structure_loads_or_is_refused(workdir, data):
    path = workdir / "job.yaml"
    path.write_text(dump(data), encoding="utf-8")
    cfg = loads_or_refuses("config: structure", lambda: load_config(None, files=[path]))
    assert isinstance(cfg, (Config, SparkdlTuneError))


# --- the override parser --------------------------------------------------------------------

override_key = st.sampled_from(sorted(KEYS)) | junk_key | st.sampled_from(
    ["spark.conf.spark.a", "search.space.model.dropout", "search.space", "spark.conf",
     "training.", ".epochs", "model..units", " training.epochs "])
override_value = (st.text(max_size=30) | yaml_like
                  | st.integers().map(str) | st.floats().map(repr)
                  | values.map(lambda v: json.dumps(v, allow_nan=True))
                  | values.map(lambda v: dump(v).replace("\n", " ")))
override = st.one_of(st.tuples(override_key, override_value).map("=".join),
                     st.text(max_size=30))


@FAST
@given(overrides=st.lists(override, max_size=4))
@example(overrides=["spark.conf=5", "spark.conf.spark.a=1"])  # a section that is not a mapping
@example(overrides=["search.space=null", "search.space.model.dropout=0.1"])
@example(overrides=["training.metrics=&a [*a]"])
@example(overrides=["training.metrics=" + "[" * 3000 + "]" * 3000])
def test_any_overrides_load_or_are_refused(overrides):
    cfg = loads_or_refuses("overrides", lambda: load_config(None, overrides=overrides))
    assert isinstance(cfg, (Config, SparkdlTuneError))


# --- the search-space parser ----------------------------------------------------------------

SPACE_KEYS = ["training.learning_rate", "training.batch_size", "training.epochs", "model.dropout",
              "model.units", "model.architecture", "model.n_layers", "model.layer_units",
              "training.optimizer", "training.metrics", "model.conv_blocks", "value"]
number = (st.integers(-5, 600) | st.floats(-2, 2) | st.integers() | st.floats()
          | st.sampled_from(["1e-4", "abc", "1e999"]))
bounds = st.lists(number | scalars, min_size=0, max_size=4)


def dimension(children: st.SearchStrategy) -> st.SearchStrategy:
    """One dimension spec: each kind with fitting and unfitting arguments, branches, junk."""
    kind_args = st.one_of(
        st.tuples(st.sampled_from(["uniform", "loguniform"]), bounds),
        st.tuples(st.just("quniform"), bounds),
        st.tuples(st.just("int"), bounds),
        st.tuples(st.just("choice"), st.lists(values | branch(children), max_size=4) | values),
        st.tuples(st.just("fixed"), values),
        st.tuples(junk_key | st.sampled_from(KINDS), values))
    return (kind_args.map(lambda ka: {ka[0]: ka[1]}) | scalars | values
            | st.dictionaries(st.sampled_from(KINDS), bounds, min_size=2, max_size=3))


def branch(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda v, sub: {"value": v, **sub}, scalars | values,
                     st.dictionaries(st.sampled_from(SPACE_KEYS) | junk_key, children, max_size=2))


specs = st.recursive(dimension(st.nothing()), dimension, max_leaves=8)
# well-formed dimensions with numbers drawn wide, so tune's check (sample, decode, type) runs
good_spec = st.one_of(
    st.tuples(st.floats(-1e300, 1e300), st.floats(-1e300, 1e300)).map(
        lambda b: {"uniform": sorted(b)}),
    st.tuples(st.integers(-10**20, 10**20), st.integers(-10**20, 10**20), st.integers(1, 10**6))
    .map(lambda b: {"int": [min(b[:2]), max(b[:2]), b[2]]}),
    st.tuples(st.integers(-50, 50), st.integers(-50, 50), st.sampled_from([1, 2, 0.5, 1e-300]))
    .map(lambda b: {"quniform": [min(b[:2]) * b[2], (max(b[:2]) + 1) * b[2], b[2]]}),
    st.lists(values, min_size=1, max_size=4).map(lambda o: {"choice": o}),
    scalars)
# spaces that mostly make valid configs, with bounds drawn wide (tune's check samples them)
fitting = st.fixed_dictionaries({}, optional={
    "model.dropout": st.floats(0, 0.99).map(lambda h: {"uniform": [0.0, h]} if h > 0 else 0.0),
    "training.learning_rate": st.floats(1e-300, 1e300).map(lambda h: {"loguniform": [1e-300, h]}),
    "training.batch_size": st.integers(2, 10**20).map(lambda h: {"int": [1, h]}),
    "model.layer_units": st.integers(1, 2**40).map(lambda h: {"quniform": [h, 2 * h, h]}),
    "training.optimizer": st.lists(st.sampled_from(LITERALS), min_size=1).map(
        lambda o: {"choice": o})})
space_data = st.dictionaries(st.sampled_from(SPACE_KEYS) | junk_key | st.integers(),
                             specs | good_spec, max_size=4) | st.dictionaries(
    st.sampled_from(SPACE_KEYS), good_spec, min_size=1, max_size=3) | fitting
space_file = space_data.map(lambda s: {"space": s}) | st.dictionaries(
    st.sampled_from(["space", "extra"]) | st.integers(), space_data | values, max_size=3)


def _load_space(data: typing.Any, algorithm: str) -> SearchSpace:
    """What ``tune`` does with the config's ``search.space`` before Spark starts."""
    SearchSpace.from_dict(data)  # first the parse alone, as the error would come from it
    cfg = Config()
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(
        cfg.search, space=dict(space_data_of(data)), algorithm=algorithm))
    return load_space(cfg)


def space_data_of(data: typing.Any) -> typing.Any:
    return data["space"] if "space" in data else data


@FAST
@given(data=space_data | space_file | values, algorithm=st.sampled_from(["tpe", "grid"]))
@example(data={"space": {"model.dropout": 0.1}, 1: 2, "a": 3}, algorithm="tpe")  # mixed keys
@example(data={"model.dropout": {"uniform": [0, 10**400]}}, algorithm="tpe")
@example(data={"model.layer_units": {"int": [1, 10**400]}}, algorithm="tpe")
@example(data={"model.layer_units": {"int": [1, 10**30]}}, algorithm="tpe")
@example(data={"model.dropout": {"quniform": [0, 1, 5e-324]}}, algorithm="tpe")
@example(data={"model.dropout": {"uniform": [-1e308, 1e308]}}, algorithm="tpe")
@example(data={"model.layer_units": {"int": [1, 10**12]}}, algorithm="grid")  # listed whole
def test_any_space_loads_or_is_refused(data, algorithm):
    loads_or_refuses("space: from_dict", lambda: SearchSpace.from_dict(data))
    loads_or_refuses("space: tune's check", lambda: _load_space(data, algorithm))


@FAST
@given(data=space_file | space_data, text=st.text(max_size=120) | yaml_like,
       as_text=st.booleans())
@example(data={}, text="!!int", as_text=True)  # PyYAML's constructor: IndexError
@example(data={}, text="space: {model.dropout: !!float x}", as_text=True)
def test_any_space_file_loads_or_is_refused(workdir, data, text, as_text):
    path = workdir / "space.yaml"
    path.write_text(text if as_text else dump(data), encoding="utf-8")
    loads_or_refuses("space: from_yaml", lambda: SearchSpace.from_yaml(path))


# --- the CLI end ----------------------------------------------------------------------------

def _fails_to_load(conf_dir: pathlib.Path, job: pathlib.Path, overrides: list[str]) -> bool:
    try:
        load_config(conf_dir, files=[job], overrides=overrides)
    except SparkdlTuneError:
        return True
    return False


cli_override = st.tuples(override_key.filter(lambda k: not k.startswith("-")),
                         override_value).map("=".join)


@FAST
@given(command=st.sampled_from(["train", "tune"]), text=st.text(max_size=120) | yaml_like
       | (section(Config) | values).map(dump), overrides=st.lists(cli_override, max_size=3))
@example(command="tune", text="model: [\n", overrides=[])
@example(command="train", text="", overrides=["training.epochs=0"])
@example(command="train", text="\x1f", overrides=[])  # PyYAML's reader error is two lines
@example(command="tune", text="", overrides=["0\n0=1"])  # a key with a line break
@example(command="train", text='"\\v":', overrides=[])  # a vertical tab breaks a line too
def test_the_cli_stops_bad_config_with_exit_2_and_one_line(workdir, command, text, overrides):
    conf_dir = workdir / "conf"  # empty: only the package defaults, the job file and overrides
    conf_dir.mkdir(exist_ok=True)
    job = workdir / "cli-job.yaml"
    job.write_text(text, encoding="utf-8")
    if not _fails_to_load(conf_dir, job, overrides):
        overrides = [*overrides, "no_such_section.key=1"]  # a valid config would start Spark
    TRIED["cli: " + command] += 1
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([command, str(job), "--conf-dir", str(conf_dir), *overrides])
    OUTCOMES["cli: " + command, "error"] += 1
    lines = err.getvalue().splitlines()
    assert code == EXIT_BAD_INPUT, err.getvalue()
    assert len(lines) == 1 and lines[0].startswith("sparkdl-tune: error: "), lines
