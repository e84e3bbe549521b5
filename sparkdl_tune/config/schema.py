"""The configuration tree: frozen dataclasses, one per YAML section.

Defaults here mirror ``defaults.yaml``; :mod:`sparkdl_tune.config.loader` fills them from the
layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from ..search import engines as search_engines
from ..spec.engines import ENGINES, first_installed
from ..spec.readers import READERS
from .model_spec import ModelSpec, TrainingSpec

# execution.backend and data.reader: the names come from the registries, so a new engine or
# reader is valid here (and listed in the loader's "not one of" message) without a second list.
# ``auto`` (the default) is the first of the registry that is installed: the profile's own.
BackendName = Literal[("auto", *ENGINES)]  # type: ignore[valid-type]
READER_NAMES = ("auto", *READERS)
# search.engine and search.algorithm: the engines' registry, and each engine's own algorithms
# beside the package's (grid, genetic, sweep, pyramid); the engine's own are checked per engine
SEARCH_ENGINES = tuple(search_engines.ENGINES)
SEARCH_ALGORITHMS = tuple(dict.fromkeys(
    [a for e in SEARCH_ENGINES for a in search_engines.load(e).ALGORITHMS]
    + list(search_engines.PACKAGE_ALGORITHMS)))


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs. ``master: null`` keeps what spark-submit set, else ``local[*]``."""

    master: Optional[str] = None
    app_name: str = "sparkdl-tune"
    log_level: str = "WARN"
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSettings:
    """A prepared dataset (see :mod:`sparkdl_tune.driver.preparation`) and how training reads it.

    ``reader`` names the row-group reader of :mod:`sparkdl_tune.executor.readers`
    (``petastorm``, or ``arrow``: pyarrow alone, for where Petastorm does not install);
    ``auto``: Petastorm where it is installed (profile classic), else Arrow.
    ``cache_url`` is where the materialised copy lives (default ``.cache/petastorm``
    under the working directory; on a cluster a shared URL such as ``dbfs:/tmp/...``).
    ``feature_columns`` picks a subset of named feature columns (a search dimension).
    ``in_memory_cache``: ``auto`` keeps decoded batches in memory when the rank's shard fits
    in ``cache_max_mb``; ``off`` always streams from Parquet. ``row_group_mb`` is the Parquet
    row-group size as written (encoded; Fashion-MNIST's 1 MB holds about 1,000 rows, 3 MB
    decoded): the unit of reading, of per-epoch shuffling and of sharding among ranks.
    ``reader_workers`` is the number of reader threads per rank.
    """

    path: str = "data/fashion-mnist"
    reader: Literal[READER_NAMES] = "auto"
    cache_url: Optional[str] = None
    feature_columns: Optional[tuple[str, ...]] = None
    reader_workers: int = 2
    row_group_mb: int = 1
    shuffle: bool = True
    in_memory_cache: Literal["auto", "on", "off"] = "auto"
    cache_max_mb: int = 2048

    def __post_init__(self):
        if self.reader_workers < 1 or self.row_group_mb < 1 or self.cache_max_mb < 0:
            raise ValueError("reader_workers and row_group_mb must be >= 1, cache_max_mb >= 0")
        if self.reader == "auto":
            object.__setattr__(self, "reader", first_installed(READERS, "data.reader"))


@dataclass(frozen=True)
class ExecutionSettings:
    """Where a training runs: ``num_proc: 1`` in-process, ``N`` ranks on N Spark tasks.

    ``backend`` is the engine that joins the ranks (:mod:`sparkdl_tune.spec.engines`):
    ``horovod`` (Horovod over Gloo) or ``tf_distribute`` (a Spark barrier stage running
    TensorFlow's MultiWorkerMirroredStrategy); ``auto``: Horovod where it is installed
    (profile classic), else tf_distribute. ``scale_learning_rate`` multiplies the learning
    rate by the number of ranks (the usual rule for a global batch ``N`` times larger).
    ``threads_per_proc`` caps TensorFlow's threads per rank (default: the host's cores shared
    among its ranks). ``warm``: a ``distributed`` search on ``tf_distribute`` trains its trials
    on one running set of ranks, started by the first trial (fresh ranks after a failed one;
    :mod:`sparkdl_tune.driver.launch.warm`); Horovod trials launch their ranks each time.
    """

    num_proc: int = 1
    backend: BackendName = "auto"
    scale_learning_rate: bool = True
    threads_per_proc: Optional[int] = None
    seed: int = 42
    start_timeout: int = 120
    warm: bool = True

    def __post_init__(self):
        if self.num_proc < 1:
            raise ValueError(f"num_proc is {self.num_proc}; use 1 (in-process) or more")
        if self.backend == "auto":
            object.__setattr__(self, "backend", first_installed(ENGINES, "execution.backend"))


@dataclass(frozen=True)
class MlflowSettings:
    """Tracking store and naming; ``tracking_uri: null`` uses MLFLOW_TRACKING_URI, else
    ``sqlite:///<working directory>/mlflow.db`` (see :mod:`sparkdl_tune.tracking.uri`)."""

    tracking_uri: Optional[str] = None
    experiment: str = "sparkdl-tune"
    registered_model_name: Optional[str] = None


@dataclass(frozen=True)
class GeneticSettings:
    """Options of the ``genetic`` algorithm (see :mod:`sparkdl_tune.search.algorithms.genetic`);
    ``population`` is also the generation size of optuna's ``nsga2``."""

    population: int = 10
    generations: Optional[int] = None
    mutation_rate: float = 0.2
    crossover_rate: float = 0.9
    tournament_size: int = 3
    elitism: int = 2


@dataclass(frozen=True)
class PruningSettings:
    """Options of ``search.scheduler`` (see :mod:`sparkdl_tune.search.schedulers`); the resource is
    epochs.

    ``min_epochs`` is the grace period: no trial stops before it (ASHA's first rung, the
    median rule's first judged epoch). ``max_epochs`` is what a trial that is never stopped
    trains (default ``search.trial_epochs``, else ``training.epochs``). ASHA's rungs sit at
    ``min_epochs * reduction_factor**k``; at each, a trial goes on only when it is in the top
    ``1/reduction_factor`` of the trials recorded there. ``hyperband`` runs ASHA brackets with
    grace periods ``min_epochs * reduction_factor**s``. ``median`` stops a trial whose best
    value so far is worse than the median of the other trials' at the same epoch, once
    ``min_trials`` others reached it.
    """

    min_epochs: int = 1
    max_epochs: Optional[int] = None
    reduction_factor: float = 3.0
    min_trials: int = 3

    def __post_init__(self):
        if self.min_epochs < 1:
            raise ValueError(f"min_epochs is {self.min_epochs}; use 1 or more")
        if self.max_epochs is not None and self.max_epochs < self.min_epochs:
            raise ValueError(f"max_epochs ({self.max_epochs}) is below min_epochs "
                             f"({self.min_epochs}); raise max_epochs")
        if self.reduction_factor <= 1:
            raise ValueError(f"reduction_factor is {self.reduction_factor}; use more than 1 "
                             "(3 is usual)")
        if self.min_trials < 1:
            raise ValueError(f"min_trials is {self.min_trials}; use 1 or more")


@dataclass(frozen=True)
class SweepSettings:
    """Options of the ``sweep`` algorithm (see :mod:`sparkdl_tune.search.algorithms.sweep`).

    ``points`` is how many values a continuous dimension (uniform, loguniform) is tried at:
    evenly spaced over its range (in log space for loguniform), ends included. Choices, integer
    ranges and quantised ranges are tried at every value.
    """

    points: int = 5

    def __post_init__(self):
        if self.points < 2:
            raise ValueError(f"points is {self.points}; use 2 or more, e.g. 5")


@dataclass(frozen=True)
class PyramidSettings:
    """Options of the ``pyramid`` algorithm (see :mod:`sparkdl_tune.search.algorithms.pyramid`).

    A layer grows through ``start_units``, twice that, ... while the validation metric improves
    by more than ``min_delta`` (absolute); a new layer is kept when its best size improves on
    the network without it by more than ``min_delta``. ``max_layers`` caps the depth (null: no
    cap but the output size).
    """

    min_delta: float = 0.002
    start_units: int = 2
    max_layers: Optional[int] = None

    def __post_init__(self):
        if self.min_delta < 0:
            raise ValueError(f"min_delta is {self.min_delta}; use 0 or more, e.g. 0.002")
        if self.start_units < 1:
            raise ValueError(f"start_units is {self.start_units}; use 1 or more, e.g. 2")
        if self.max_layers is not None and self.max_layers < 1:
            raise ValueError(f"max_layers is {self.max_layers}; use 1 or more, or null")


@dataclass(frozen=True)
class SearchSettings:
    """A hyper-parameter search.

    ``name`` identifies the search: running the same name again resumes it from MLflow (or
    reports it, once finished) while its definition is unchanged (see
    :mod:`sparkdl_tune.search.definition`); a changed one stops with exit code 2 unless ``resume``
    is ``extend``, which keeps the finished trials and runs the rest of a larger budget.
    ``space`` holds the search space inline (dotted config keys -> dimension specs) and
    ``space_file`` names a YAML file with a top-level ``space:``; one of them is required.
    ``metric``/``mode`` default to validation accuracy (max) for classification and
    validation loss (min) for regression. ``trial_epochs`` screens candidates with fewer
    epochs than ``final_epochs`` (default ``training.epochs``) used for the retrain of the best;
    ``final_minutes`` caps the retrain's wall time: its epochs are cut to what the best trial's
    measured throughput says fits, and training stops before an epoch that would not.
    ``execution_mode``: ``parallel`` (SparkTrials, one in-process training per Spark task),
    ``distributed`` (driver-side Trials, each trial a job of ``execution.num_proc`` ranks on
    ``execution.backend``),
    or ``auto``. ``runner`` says how ``parallel`` trials run: ``executors`` (default: one
    long-lived Spark task per slot takes trial after trial from the driver, keeping TensorFlow
    imported and the decoded data cached; see :mod:`sparkdl_tune.search.runners.executors`) or
    ``sparktrials`` (hyperopt's SparkTrials: one Spark job per trial, a new Python worker
    each); distributed trials ignore it. ``parallelism`` is how many trials run at once:
    parallel mode, all task slots by default; distributed mode, 1 by default, and with more
    each running trial on ``tf_distribute`` is its own barrier stage of ``num_proc`` ranks
    (at most ``slots // num_proc`` at once; Horovod trials run one at a time).
    ``scheduler`` decides, from the per-epoch reports of running trials, which to
    stop early (``fifo``: none; ``asha``, ``hyperband``, ``median``: see ``pruning``); a stopped
    trial is recorded as *pruned*, with the epoch and score it reached. ``report`` writes plots and
    an HTML page into ``<output_dir>/<name>/report`` at the end (see :mod:`sparkdl_tune.reporting`).

    ``engine`` names the search engine (:mod:`sparkdl_tune.search.engines`: ``hyperopt`` or
    ``optuna``); ``algorithm`` is one of that engine's own (hyperopt: ``tpe``, ``random``,
    ``anneal``; optuna: ``tpe`` (multivariate, grouped for conditional spaces), ``random``,
    ``cmaes``, ``gp`` (needs PyTorch), ``nsga2`` (needs ``objectives``)) or one of the
    package's (``grid``, ``genetic``, ``sweep``, ``pyramid``), which every engine drives.

    Study designs: ``algorithm: sweep`` tries one dimension at a time at ``trial_epochs`` with
    the others at their best so far (options in ``sweep``); ``algorithm: pyramid`` grows a dense
    network layer by layer (options in ``pyramid``); the retrain confirms the winner at
    ``final_epochs``. ``objectives`` names the metric and a second objective to minimise
    (``params``, ``epoch_seconds`` or ``latency_ms``): the search keeps the Pareto front and
    retrains the model with the fewest of the second objective among those within
    ``tolerance`` of the best metric; scalarising algorithms (tpe, anneal, random, cmaes, gp)
    minimise the loss plus ``complexity_weight`` per decade of the second objective.
    ``baseline: true`` (or a mapping of config keys, default batch 32 and learning rate 1e-3)
    trains that configuration first as a recorded run; the summary gives the relative error
    drop of the result against it.

    ``cv_folds: k`` (null: off) scores each trial by k-fold cross-validation on
    train+validation: k trainings, each validated on one fold; the trial's score is their mean
    and the standard deviation is recorded (see :mod:`sparkdl_tune.search.folds`).

    ``trial_test: true`` evaluates every finished trial on the test split too (its
    ``test_*`` metrics in its MLflow run); off by default: trials are compared on validation
    and the final retrain is the one evaluated on test, so a trial skips that pass.
    """

    name: str = "search"
    resume: Literal["auto", "extend"] = "auto"
    space: Optional[dict[str, Any]] = None
    space_file: Optional[str] = None
    engine: Literal[SEARCH_ENGINES] = search_engines.DEFAULT  # type: ignore[valid-type]
    algorithm: Literal[SEARCH_ALGORITHMS] = "tpe"  # type: ignore[valid-type]
    scheduler: Literal["fifo", "asha", "hyperband", "median"] = "fifo"
    pruning: PruningSettings = field(default_factory=PruningSettings)
    max_trials: int = 20
    timeout_minutes: Optional[float] = None
    stop_after_no_improvement: Optional[int] = None
    target: Optional[float] = None
    metric: Optional[str] = None
    mode: Optional[Literal["min", "max"]] = None
    execution_mode: Literal["auto", "parallel", "distributed"] = "auto"
    parallelism: Optional[int] = None
    runner: Literal["sparktrials", "executors"] = "executors"
    trial_epochs: Optional[int] = None
    final_epochs: Optional[int] = None
    final_minutes: Optional[float] = None
    retrain: bool = True
    report: bool = True
    seed: int = 42
    output_dir: str = "out/tune"
    genetic: GeneticSettings = field(default_factory=GeneticSettings)
    sweep: SweepSettings = field(default_factory=SweepSettings)
    pyramid: PyramidSettings = field(default_factory=PyramidSettings)
    objectives: tuple[str, ...] = ()
    tolerance: float = 0.005
    complexity_weight: float = 0.01
    baseline: Union[bool, dict[str, Any]] = False
    cv_folds: Optional[int] = None
    trial_test: bool = False

    def __post_init__(self):
        allowed = (*search_engines.load(self.engine).ALGORITHMS,
                   *search_engines.PACKAGE_ALGORITHMS)
        if self.algorithm not in allowed:
            owners = [e for e in SEARCH_ENGINES
                      if self.algorithm in search_engines.load(e).ALGORITHMS]
            hint = f"; it is {owners[0]}'s: set search.engine={owners[0]}" if owners else ""
            raise ValueError(f"algorithm {self.algorithm!r} is not one of engine "
                             f"{self.engine}'s: {', '.join(allowed)}{hint}")
        if self.cv_folds is not None and (isinstance(self.cv_folds, bool)
                                          or self.cv_folds < 2):
            raise ValueError(f"cv_folds is {self.cv_folds!r}; use an integer of 2 or more "
                             "(e.g. 5), or null for no cross-validation")
        if isinstance(self.objectives, list):
            object.__setattr__(self, "objectives", tuple(self.objectives))
        if self.tolerance < 0:
            raise ValueError(f"tolerance is {self.tolerance}; use 0 or more, e.g. 0.005")
        if self.complexity_weight < 0:
            raise ValueError(f"complexity_weight is {self.complexity_weight}; use 0 or more")
        if self.max_trials < 1:
            raise ValueError(f"max_trials is {self.max_trials}; use 1 or more")
        if self.final_minutes is not None and self.final_minutes <= 0:
            raise ValueError(f"final_minutes is {self.final_minutes}; use a positive number "
                             "of minutes, or null for no limit")
        if self.parallelism is not None and self.parallelism < 1:
            raise ValueError(f"parallelism is {self.parallelism}; use 1 or more")
        if self.space is not None and self.space_file is not None:
            raise ValueError("give the space inline (search.space) or as a file "
                             "(search.space_file), not both")


@dataclass(frozen=True)
class Config:
    """The whole job configuration."""

    spark: SparkSettings = field(default_factory=SparkSettings)
    data: DataSettings = field(default_factory=DataSettings)
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
