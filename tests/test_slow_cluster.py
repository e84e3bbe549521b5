"""A real Spark standalone cluster (slow: make test-slow).

scripts/cluster.sh starts a master and two workers (1 core, 2g each) on 127.0.0.1 with
pyspark's own spark-class. The package is built as a wheel and shipped with ``spark-submit
--py-files`` under a ``.zip`` name (pyspark puts only .zip/.egg/.jar files from --py-files on
the executors' sys.path: a .whl is copied there and never imported); a probe job checks that
the executors import it from there. A ``parallel`` tune (SparkTrials, 2 trials at a time) is
then submitted to the master. Each trial's MLflow child run names the working directory of the
executor it ran in (``sparkdl_tune.where``); on a standalone cluster that lies under the
worker's own work dir, so two distinct worker dirs mean trials ran on both workers. The
cluster is stopped at the end and no master, worker or executor process may be left.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import RunningTrials

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "cluster.sh"
# the interpreter running the tests is the venv's (not resolved: a symlink names the venv)
PYTHON = pathlib.Path(sys.executable)
BIN = PYTHON.parent
EPOCHS = 12  # per trial: long enough to be seen running
SPACE = {"model.units": {"choice": [[8], [16]]},
         "training.learning_rate": {"loguniform": [1e-3, 1e-2]}}

# Runs on the executors: which file the shipped package was imported from, and where.
PROBE = """\
import json, os
from pyspark.sql import SparkSession

def origin(_):
    import sparkdl_tune
    yield sparkdl_tune.__file__, os.getcwd()

spark = SparkSession.builder.appName("sparkdl-tune-wheel-probe").getOrCreate()
print("PROBE " + json.dumps(spark.sparkContext.parallelize(range(2), 2)
                              .mapPartitions(origin).collect()))
spark.stop()
"""


def _env(state: pathlib.Path) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH (executors must import the package
    from the shipped wheel), the venv first on PATH, loopback only."""
    import pyspark

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
                        "SPARK_CONF_DIR", "MLFLOW_TRACKING_URI", "PYSPARK_GATEWAY_PORT")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               SPARK_HOME=os.path.dirname(pyspark.__file__), SPARK_LOCAL_IP="127.0.0.1",
               CLUSTER_DIR=str(state), PYTHON=str(PYTHON), TF_CPP_MIN_LOG_LEVEL="2")
    return env


def _run(cmd, env, cwd, log: pathlib.Path, timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` with stdout kept and stderr in ``log``; fail with the log's tail."""
    with open(log, "w") as err:
        proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=err, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        pytest.fail(f"{' '.join(map(str, cmd[:3]))} ... exited {proc.returncode}\n"
                    f"stdout:\n{proc.stdout[-3000:]}\nstderr ({log}):\n{tail}")
    return proc


def _master_json(state: pathlib.Path) -> dict:
    conf = dict(line.split("=", 1) for line in (state / "cluster.env").read_text().split())
    url = f"http://127.0.0.1:{conf['MASTER_WEBUI_PORT']}/json/"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _our_processes(state: pathlib.Path) -> list[str]:
    """Processes whose command line names the state dir or whose cwd lies inside it."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(state) in cmdline or cwd == str(state) or cwd.startswith(f"{state}/"):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _summary(stdout: str) -> dict:
    """The JSON summary the tune command prints last."""
    return json.loads(stdout[stdout.rindex("\n{\n") + 1:] if "\n{\n" in stdout else stdout)


def test_parallel_tune_on_a_two_worker_standalone_cluster(tmp_path):
    if not (BIN / "spark-submit").exists() or shutil.which("java") is None:
        pytest.skip("needs the venv's spark-submit and a java on PATH (scripts/setup.sh)")
    started = time.monotonic()
    tmp_path = tmp_path.resolve()  # executors report physical working directories
    state, data, dist = tmp_path / "cluster", tmp_path / "data", tmp_path / "dist"
    env = _env(state)

    # a tiny dataset, prepared on a local Spark, and the cluster, started while the wheel builds
    prep_log = open(tmp_path / "prepare.log", "w")
    prep = subprocess.Popen(
        [str(BIN / "sparkdl-tune"), "prepare", "synthetic-classification", "--rows", "600",
         "--features", "8", "--classes", "3", "--out", str(data), "spark.master=local[1]"],
        env=env, cwd=tmp_path, stdout=prep_log, stderr=subprocess.STDOUT)
    start_log = open(tmp_path / "start.log", "w")
    start = subprocess.Popen([str(SCRIPT), "start"], env=env, cwd=tmp_path, text=True,
                             stdout=subprocess.PIPE, stderr=start_log)
    try:
        # --no-build-isolation: the venv already has the pinned setuptools and wheel
        _run([PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
              "-w", dist, ROOT], env, tmp_path, tmp_path / "wheel.log", timeout=300)
        (built,) = dist.glob("sparkdl_tune-*.whl")
        wheel = dist / "sparkdl_tune.zip"  # the same wheel, named so pyspark imports it
        shutil.copyfile(built, wheel)

        started_out = start.communicate(timeout=240)[0]
        print(started_out)
        assert start.returncode == 0, (started_out, (tmp_path / "start.log").read_text())
        assert "2 workers ALIVE" in started_out
        master = _master_json(state)
        workers = [w for w in master["workers"] if w["state"] == "ALIVE"]
        assert len(workers) == 2 and all(w["host"] == "127.0.0.1" for w in workers), master
        assert [w["cores"] for w in workers] == [1, 1] and master["url"].startswith(
            "spark://127.0.0.1:")
        assert _run([SCRIPT, "start"], env, tmp_path, tmp_path / "start2.log",
                    timeout=60).stdout.startswith("[cluster] already running")
        url = _run([SCRIPT, "url"], env, tmp_path, tmp_path / "url.log", timeout=30)
        url = url.stdout.strip()
        assert url == master["url"]
        submit = [BIN / "spark-submit", "--master", url,
                  "--conf", f"spark.pyspark.python={PYTHON}",
                  "--conf", "spark.executor.cores=1", "--conf", "spark.task.cpus=1",
                  "--conf", "spark.executor.memory=1g",
                  "--conf", "spark.ui.showConsoleProgress=false",
                  "--py-files", wheel]

        # the executors import sparkdl_tune from the shipped wheel, not from this checkout
        # (the venv has it installed in editable mode: without the wheel on their sys.path
        # they would silently import the checkout)
        probe = tmp_path / "probe.py"
        probe.write_text(PROBE)
        out = _run([*submit, probe], env, tmp_path, tmp_path / "probe.log", timeout=240).stdout
        origins = json.loads(out[out.index("PROBE ") + 6:].splitlines()[0])
        print("executors imported sparkdl_tune from:", origins)
        assert len(origins) == 2
        for file, cwd in origins:
            file = os.path.normpath(os.path.join(cwd, file))  # sys.path holds ./<wheel>
            assert file.startswith(f"{cwd}/{wheel.name}/sparkdl_tune/"), (file, cwd)
            assert cwd.startswith(f"{state}/work/worker-"), cwd

        assert prep.wait(timeout=300) == 0, (tmp_path / "prepare.log").read_text()[-3000:]

        db = tmp_path / "mlflow.db"
        tune = [ROOT / "jobs" / "tune.py", ROOT / "conf" / "jobs" / "fashion_tune.yaml",
                f"data.path={data}", f"data.cache_url={tmp_path / 'cache'}",
                f"search.space={json.dumps(SPACE)}", "search.space_file=null",
                "search.name=cluster", "search.algorithm=tpe", "search.max_trials=4",
                "search.execution_mode=parallel", "search.parallelism=2",
                f"search.trial_epochs={EPOCHS}", "training.epochs=2", "training.batch_size=64",
                "search.metric=val_loss",
                "search.retrain=false", f"search.output_dir={tmp_path / 'out'}",
                f"mlflow.tracking_uri=sqlite:///{db}", "mlflow.experiment=cluster",
                "mlflow.registered_model_name=null"]
        with RunningTrials(f"sqlite:///{db}", "cluster") as sightings:
            out = _run([*submit, *tune], env, tmp_path, tmp_path / "tune.log",
                       timeout=420).stdout
        summary = _summary(out)
        assert summary["execution_mode"] == "parallel" and summary["trials"] == 4, summary
        assert summary["failed"] == 0, summary

        # where each trial ran: <host>:<executor cwd> = <state>/work/worker-N/<app>/<executor>
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{db}")
        exp = client.get_experiment_by_name("cluster")
        runs = client.search_runs([exp.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}' "
                                  "and tags.`sparkdl_tune.kind` = 'trial'")
        places = [pathlib.Path(r.data.tags["sparkdl_tune.where"].split(":", 1)[1])
                  .relative_to(state / "work").parts for r in runs]
        print("trials ran in:", sorted("/".join(p) for p in places))
        assert len(places) == 4 and {r.info.status for r in runs} == {"FINISHED"}
        # the executors' trials reported every epoch to the driver while they ran: seen
        # RUNNING with epochs logged, and each epoch they trained logged once (the job's early
        # stopping may end a trial before EPOCHS)
        print("seen running with (run, epochs logged):", sorted(set(sightings))[:8])
        assert any(1 <= n < EPOCHS for _, n in sightings), sightings
        for r in runs:
            steps = [m.step for m in client.get_metric_history(r.info.run_id, "val_loss")]
            assert sorted(steps) == list(range(int(r.data.metrics["epochs_run"]))), steps
        assert {p[0] for p in places} == {"worker-1", "worker-2"}, places
        apps = {p[1] for p in places}
        assert len(apps) == 1, places  # one application: the tune job
        # ... which the master lists as finished, with both workers' cores
        done = {a["id"]: a for a in _master_json(state)["completedapps"]}
        (app,) = apps
        assert done[app]["state"] == "FINISHED" and done[app]["cores"] == 2, done.get(app)
        # and the wheel was shipped into every executor's working directory
        for where in {"/".join(p) for p in places}:
            assert (state / "work" / where / wheel.name).is_file(), where
    finally:
        for proc in (prep, start):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        prep_log.close()
        start_log.close()
        stop = subprocess.run([str(SCRIPT), "stop"], env=env, cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        print(stop.stdout)
        print(f"cluster test took {time.monotonic() - started:.0f}s")
    assert stop.returncode == 0, stop.stdout
    assert not list(state.glob("*.pid"))
    assert _our_processes(state) == []
    status = subprocess.run([str(SCRIPT), "status"], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert status.returncode == 3, status.stdout
