"""GPU executors: each rank sees only the GPU Spark assigned to its task; none -> CPU (each
engine: a Horovod rank, a tf_distribute barrier task's child).

There is no GPU on the test machine. ``fake_gpu_discovery.sh`` makes Spark's standalone
scheduler believe a worker has GPUs "0" and "1"; what is checked is the address each rank made
visible to TensorFlow (``CUDA_VISIBLE_DEVICES``, set before TensorFlow is imported).

The GPU case needs a master with resource scheduling, so it runs in a child Python process
(this file run as a script) with its own ``local-cluster`` SparkSession: one standalone worker
with two cores and the two fake GPUs, launching two one-core, one-GPU executors; one GPU per
task. While the child trains, it watches its own process tree: which executor JVM each rank
process runs under, and the resources file the standalone worker wrote for that executor
(``--resourcesFile``: the addresses Spark allocated to it). That is read independently of
Horovod and of the worker code, and each rank must have made exactly that address visible.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import train_overrides

HERE = Path(__file__).resolve().parent
DISCOVERY_SCRIPT = HERE / "fake_gpu_discovery.sh"
OFFERED = ["0", "1"]  # what fake_gpu_discovery.sh reports
TOKEN_VAR = "SPARKDL_TUNE_GPU_TEST_TOKEN"  # marks every process the GPU test starts


# how each engine's rank processes are told apart on the command line
RANK_PROCESS = {"horovod": "gloo_exec_fn", "tf_distribute": "sparkdl_tune.executor.barrier"}


def train_two_ranks(spark, dataset, workdir, backend="auto") -> dict:
    """A 2-rank training of the tiny dataset (2 epochs) on ``backend`` (``auto``: the
    profile's engine); the ranks' reports."""
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.driver.train import fit, prepare_inputs

    cfg = load_config(None, overrides=train_overrides(dataset, Path(workdir),
                                                      execution__num_proc=2,
                                                      execution__backend=backend))
    result = fit(cfg, prepare_inputs(cfg, spark), verbose=0)
    return {"ranks": result.extra["ranks"], "epochs_run": result.epochs_run,
            "num_proc": result.num_proc}


# --- in-process checks --------------------------------------------------------------------


@pytest.mark.requires_horovod
def test_pinning_takes_the_addresses_horovod_passes_from_the_spark_task(monkeypatch):
    from horovod.spark.task import task_info
    from pyspark.resource import ResourceInformation

    from sparkdl_tune.executor.backends import pin_assigned_gpus
    from sparkdl_tune.executor.backends.horovod import HorovodBackend

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    # local rank 0 was given GPU "1": the address Spark assigned wins, not the local rank
    monkeypatch.setenv("HOROVOD_LOCAL_RANK", "0")
    monkeypatch.setattr(task_info._info, "resources",
                        {"gpu": ResourceInformation("gpu", ["1"])})
    assert pin_assigned_gpus(HorovodBackend()) == ["1"]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setattr(task_info._info, "resources", {})
    assert pin_assigned_gpus(HorovodBackend()) == []
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_pinning_takes_the_addresses_the_barrier_task_passes_to_its_rank(monkeypatch):
    from sparkdl_tune.executor.backends import pin_assigned_gpus
    from sparkdl_tune.executor.backends.tf_distribute import TFDistributeBackend
    from sparkdl_tune.executor.barrier import GPUS

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv(GPUS, "1")
    assert pin_assigned_gpus(TFDistributeBackend()) == ["1"]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv(GPUS, "")
    assert pin_assigned_gpus(TFDistributeBackend()) == []
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_without_gpu_resources_every_rank_runs_on_cpu(spark, tiny_dataset, tmp_path,
                                                      monkeypatch):
    # As on a GPU machine where the driver sees every GPU: ranks must still hide them all.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    out = train_two_ranks(spark, tiny_dataset, tmp_path)
    assert out["num_proc"] == 2 and out["epochs_run"] == 2
    ranks = out["ranks"]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    for r in ranks:
        assert r["gpus"] == [], r
        assert r["cuda_visible_devices"] == "", r


# --- the GPU case on a local-cluster master -----------------------------------------------


@pytest.mark.parametrize("backend", [
    pytest.param("horovod", marks=pytest.mark.requires_horovod),
    pytest.param("tf_distribute", marks=pytest.mark.slow)])
def test_each_rank_sees_only_the_gpu_spark_assigned(tiny_dataset, tmp_path, backend):
    import subprocess

    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYSPARK_GATEWAY", "SPARK_HOME"))}
    env.update({
        TOKEN_VAR: token,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # The driver "sees" both GPUs; each rank must narrow that to its own.
        "CUDA_VISIBLE_DEVICES": ",".join(OFFERED),
    })
    log_path, out_path = tmp_path / "cluster.log", tmp_path / "ranks.json"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(tiny_dataset), str(tmp_path),
             str(out_path), backend],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=420)
        finally:
            _stop_everything(proc, token)
    tail = log_path.read_text(errors="replace")[-4000:]
    assert proc.returncode == 0, tail
    report = json.loads(out_path.read_text())

    # The Spark JVMs (driver, in-process master and worker, executors) stay on loopback.
    assert report["public_listeners"] == []

    # What Spark allocated, read from each executor's resources file: one offered GPU each.
    executors = report["executor_gpus"]
    assert len(executors) == 2, (executors, tail)
    assert sorted(a for addrs in executors.values() for a in addrs) == OFFERED, executors

    ranks = report["ranks"]
    assert report["num_proc"] == 2 and report["epochs_run"] == 2
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    rank_executor = report["rank_executor"]
    for r in ranks:
        executor = rank_executor.get(str(r["pid"]))
        assert executor is not None, (r, rank_executor)
        assert r["gpus"] == executors[executor], (r, executors)
        assert r["cuda_visible_devices"] == executors[executor][0], (r, executors)
    # the two ranks ran in different executors, hence on different GPUs
    assert len({rank_executor[str(r["pid"])] for r in ranks}) == 2
    assert sorted(r["cuda_visible_devices"] for r in ranks) == OFFERED


def _stop_everything(proc, token: str, grace: float = 120.0) -> None:
    """Stop the child and every process it started (all carry ``token`` in their env).

    ``grace`` only bounds the wait for the Spark JVMs to stop their executors themselves (a
    few seconds on an idle machine): it ends as soon as none is left, and a shared, loaded
    machine must not turn a slow shutdown into a "left running" failure."""
    import psutil

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except Exception:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + grace  # the Spark JVMs stop their executors themselves
    while True:
        left = _marked_processes(psutil, token)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    if left:
        psutil.wait_procs(left, timeout=10)
        pytest.fail(f"processes left running after the test (killed): "
                    f"{[(p.pid, _cmd(p)) for p in left]}")


def _marked_processes(psutil, token: str) -> list:
    found = []
    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.environ().get(TOKEN_VAR) == token:
                found.append(p)
        except psutil.Error:
            pass
    return found


def _cmd(p) -> str:
    try:
        return " ".join(p.cmdline())[:120]
    except Exception:
        return "?"


# --- the child process ----------------------------------------------------------------------


class _ExecutorWatcher(threading.Thread):
    """Polls this process's descendants: executor JVMs and the Horovod rank processes.

    Records each executor's id and the GPU addresses in its ``--resourcesFile`` (written by
    the standalone worker: the addresses Spark allocated to it), for each rank process
    (``horovod.spark.task.gloo_exec_fn``) the executor it runs under, and any socket a Spark
    JVM (driver with the in-process master and worker, executors) listens on off loopback.
    """

    def __init__(self, backend: str, interval: float = 0.2):
        super().__init__(daemon=True)
        self.needle = RANK_PROCESS[backend]
        self.interval = interval
        self.executor_gpus: dict[str, list[str]] = {}
        self.rank_executor: dict[str, str] = {}
        self.public_listeners: set[str] = set()
        self._jvms: dict[int, str] = {}  # executor JVM pid -> executor id
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop_event.is_set():
            try:
                children = me.children(recursive=True)
            except psutil.Error:
                children = []
            for p in children:
                try:
                    self._look_at(p)
                except (psutil.Error, OSError, ValueError):
                    pass
            self._stop_event.wait(self.interval)

    def _look_at(self, p) -> None:
        if p.name() == "java":
            for conn in p.net_connections(kind="inet"):
                if conn.status == "LISTEN" and not _is_loopback(conn.laddr.ip):
                    self.public_listeners.add(f"{conn.laddr.ip}:{conn.laddr.port}")
        if p.pid in self._jvms or str(p.pid) in self.rank_executor:
            return
        args = p.cmdline()
        if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in args:
            executor = args[args.index("--executor-id") + 1]
            allocations = json.loads(Path(args[args.index("--resourcesFile") + 1]).read_text())
            self.executor_gpus[executor] = [a for r in allocations
                                            if r["id"]["resourceName"] == "gpu"
                                            for a in r["addresses"]]
            self._jvms[p.pid] = executor
        elif any(self.needle in a for a in args):
            for parent in p.parents():
                if parent.pid in self._jvms:
                    self.rank_executor[str(p.pid)] = self._jvms[parent.pid]
                    break

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _is_loopback(ip: str) -> bool:
    import ipaddress

    addr = ipaddress.ip_address(ip)
    return (getattr(addr, "ipv4_mapped", None) or addr).is_loopback


def _private_spark_home(workdir: Path) -> Path:
    """SPARK_HOME for the local-cluster worker: the pip package's bin and jars, its own dir.

    The worker launches executors from ``$SPARK_HOME`` and keeps their work dirs in
    ``$SPARK_HOME/work``; pointing it at the pip package would write into the venv.
    """
    import pyspark

    package = Path(pyspark.__file__).resolve().parent
    home = workdir / "spark_home"
    home.mkdir(exist_ok=True)
    for name in ("bin", "jars"):
        link = home / name
        if not link.exists():
            link.symlink_to(package / name, target_is_directory=True)
    return home


def _cluster_main(dataset: str, workdir: str, out: str, backend: str) -> None:
    workdir_path = Path(workdir)
    os.environ["SPARK_HOME"] = str(_private_spark_home(workdir_path))
    discovery = workdir_path / "fake_gpu_discovery.sh"
    shutil.copy(DISCOVERY_SCRIPT, discovery)
    discovery.chmod(0o755)
    (workdir_path / "spark_local").mkdir(exist_ok=True)

    from pyspark.sql import SparkSession

    from sparkdl_tune import logs

    logs.quiet_libraries()
    watcher = _ExecutorWatcher(backend)
    watcher.start()
    spark = (
        SparkSession.builder.master("local-cluster[1,2,2048]")
        .appName("sparkdl-tune-gpu-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(workdir_path / "spark_local"))
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.executor.cores", "1")
        .config("spark.executor.memory", "768m")
        .config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", "2")
        .config("spark.worker.resource.gpu.amount", str(len(OFFERED)))
        .config("spark.worker.resource.gpu.discoveryScript", str(discovery))
        .config("spark.executor.resource.gpu.amount", "1")
        .config("spark.task.resource.gpu.amount", "1")
        .getOrCreate()
    )
    try:
        spark.sparkContext.setLogLevel("ERROR")
        report = train_two_ranks(spark, dataset, workdir_path, backend)
    finally:
        watcher.stop()
        spark.stop()
    report.update(executor_gpus=watcher.executor_gpus, rank_executor=watcher.rank_executor,
                  public_listeners=sorted(watcher.public_listeners))
    Path(out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    _cluster_main(*sys.argv[1:5])
