#!/usr/bin/env bash
# A real Spark standalone cluster on this machine, for trying spark-submit jobs end to end:
# one master and N workers (default 2, 1 core and 2g each), started with pyspark's own
# bin/spark-class (no separate Spark download), all bound to 127.0.0.1.
#
#   scripts/cluster.sh start  [--workers N] [--cores C] [--memory M] [--port P] [--webui-port W]
#   scripts/cluster.sh status           # processes + what the master reports; exit 3 if down
#   scripts/cluster.sh url              # spark://127.0.0.1:PORT (for spark-submit --master)
#   scripts/cluster.sh stop             # ends the master and the workers (and their executors)
#
# Every command takes --dir DIR (or $CLUSTER_DIR; default .cache/cluster in the checkout): the
# state folder with the PIDs (master.pid, worker-N.pid), the chosen ports (cluster.env), the
# daemon logs (logs/) and each worker's own work folder (work/worker-N/<app>/<executor>: the
# executors' working directories, stdout and stderr). Nothing is written into the venv.
# start and stop are idempotent: start on a running cluster only prints its status, stop on a
# stopped one does nothing. start returns once the master lists N ALIVE workers. Ports are
# free ones picked at start unless given. Other settings from the environment:
#   CLUSTER_WORKERS, CLUSTER_WORKER_CORES, CLUSTER_WORKER_MEMORY, CLUSTER_PORT,
#   CLUSTER_WEBUI_PORT, CLUSTER_START_TIMEOUT (seconds, default 90), PYTHON (default
#   .venv/bin/python: whose pyspark provides SPARK_HOME), CLUSTER_SPARK_HOME (another Spark).
#
# Submit to it with the venv's Python on the executors and the package's wheel copied to a .zip
# name (pyspark puts only .zip/.egg/.jar --py-files on the executors' sys.path), e.g.
#   PATH=$PWD/.venv/bin:$PATH spark-submit --master "$(scripts/cluster.sh url)" \
#     --conf spark.pyspark.python=$PWD/.venv/bin/python --py-files dist/sparkdl_tune.zip \
#     jobs/tune.py conf/jobs/fashion_tune.yaml data.path=$PWD/... (README.md has it in full)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "[cluster] error: $*" >&2; exit 2; }

CMD=${1:-}
[ -n "$CMD" ] || usage
shift
STATE=${CLUSTER_DIR:-$ROOT/.cache/cluster}
WORKERS=${CLUSTER_WORKERS:-2}
CORES=${CLUSTER_WORKER_CORES:-1}
MEMORY=${CLUSTER_WORKER_MEMORY:-2g}
PORT=${CLUSTER_PORT:-}
WEBUI_PORT=${CLUSTER_WEBUI_PORT:-}
TIMEOUT=${CLUSTER_START_TIMEOUT:-90}
while [ $# -gt 0 ]; do
  case "$1" in
    --dir|--workers|--cores|--memory|--port|--webui-port)
      [ $# -ge 2 ] || die "$1 needs a value" ;;&
    --dir) STATE=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --cores) CORES=$2; shift 2 ;;
    --memory) MEMORY=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --webui-port) WEBUI_PORT=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) die "unknown option '$1' (see: $0 --help)" ;;
  esac
done
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "--workers is '$WORKERS'; use a positive integer"
[[ $CORES =~ ^[1-9][0-9]*$ ]] || die "--cores is '$CORES'; use a positive integer"
[[ $MEMORY =~ ^[0-9]+[mMgG]$ ]] || die "--memory is '$MEMORY'; use e.g. 2g or 1536m"
[[ -z $PORT || $PORT =~ ^[0-9]+$ ]] || die "--port is '$PORT'; use a TCP port number"
[[ -z $WEBUI_PORT || $WEBUI_PORT =~ ^[0-9]+$ ]] ||
  die "--webui-port is '$WEBUI_PORT'; use a TCP port number"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
ENV_FILE=$STATE/cluster.env

MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

# --- processes we own: a PID file whose process still runs our class with our arguments ---
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }
# owned NAME -> prints the PID when NAME (master, worker-N) runs from this state folder
owned() {
  local file=$STATE/$1.pid pid line
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  line=$(cmdline "$pid")
  case "$1" in
    master) [[ $line == *"$MASTER_CLASS"* && $line == *"--properties-file $STATE/"* ]] ;;
    *) [[ $line == *"$WORKER_CLASS"* && $line == *"--work-dir $STATE/work/$1 "* ]] ;;
  esac || return 1
  echo "$pid"
}
names() {  # master, then worker-1... by their PID files
  echo master
  ls "$STATE" 2>/dev/null | sed -n 's/^\(worker-[0-9]*\)\.pid$/\1/p' | sort -V
}
load_env() { [ -f "$ENV_FILE" ] && . "$ENV_FILE"; }

master_json() {  # the master's JSON status page (workers, apps), or nothing
  load_env || return 1
  curl -fsS --max-time 5 "http://127.0.0.1:$MASTER_WEBUI_PORT/json/" 2>/dev/null || return 1
}
alive_workers() {  # number of ALIVE workers the master lists
  master_json | "$PYTHON" -c 'import json,sys
print(sum(w.get("state") == "ALIVE" for w in json.load(sys.stdin).get("workers", [])))' \
    2>/dev/null || echo 0
}

running() {  # 0 when the master and every recorded worker run
  local n
  owned master >/dev/null || return 1
  load_env || return 1
  for n in $(seq 1 "$WORKER_COUNT"); do owned "worker-$n" >/dev/null || return 1; done
}

status() {
  local name pid
  if ! load_env; then echo "[cluster] not started (no $ENV_FILE)"; return 3; fi
  for name in $(names); do
    if pid=$(owned "$name"); then echo "[cluster] $name running, pid $pid"
    else echo "[cluster] $name not running"; fi
  done
  if running; then
    echo "[cluster] master $MASTER_URL, UI http://127.0.0.1:$MASTER_WEBUI_PORT" \
         "($(alive_workers) of $WORKER_COUNT workers ALIVE; state and logs in $STATE)"
    return 0
  fi
  return 3
}

stop_pids() {  # stop_pids PID...: TERM them all, wait up to 20 s, then KILL what is left
  local pid i left
  kill -TERM "$@" 2>/dev/null || true
  for i in $(seq 1 100); do
    left=()
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    [ ${#left[@]} = 0 ] && return 0
    sleep 0.2
  done
  echo "[cluster] pid(s) ${left[*]} ignored SIGTERM; killing them" >&2
  kill -KILL "${left[@]}" 2>/dev/null || true
}

stop() {
  local name pid proc cwd pids=() stopped=0
  # workers first (each ends its executors), then the master
  for name in $(names | grep -v '^master$'); do
    if pid=$(owned "$name"); then
      echo "[cluster] stopping $name (pid $pid)"
      pids+=("$pid")
    fi
  done
  if [ ${#pids[@]} -gt 0 ]; then stop_pids "${pids[@]}"; stopped=1; fi
  if pid=$(owned master); then
    echo "[cluster] stopping master (pid $pid)"
    stop_pids "$pid"
    stopped=1
  fi
  rm -f "$STATE"/*.pid
  # executors (and their Python workers) whose working folder is one of our workers' work
  # folders: normally gone with their worker, never anything else
  pids=()
  for proc in /proc/[0-9]*; do
    cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
    if [[ $cwd == "$STATE/work/"* ]]; then
      echo "[cluster] stopping executor process ${proc#/proc/} left in $cwd"
      pids+=("${proc#/proc/}")
    fi
  done
  if [ ${#pids[@]} -gt 0 ]; then stop_pids "${pids[@]}"; fi
  rm -f "$ENV_FILE"  # logs and work folders stay for reading
  [ $stopped = 1 ] && echo "[cluster] stopped" || echo "[cluster] not running"
}

free_ports() {  # free_ports N: N distinct free TCP ports on 127.0.0.1
  "$PYTHON" - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

launch() {  # launch NAME CLASS ARGS...: a detached spark-class daemon, its PID in NAME.pid
  local name=$1
  shift
  (
    cd "$STATE"  # where a JVM drops stray files (derby, hs_err) if it ever does
    exec ${SETSID:-} "$SPARK_HOME/bin/spark-class" "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1
  ) &
  echo $! >"$STATE/$name.pid"
}

master_up() { master_json >/dev/null; }
workers_up() { [ "$(alive_workers)" -ge "$WORKERS" ]; }

wait_for() {  # wait_for WHAT CHECK: poll CHECK until it passes; fail if a daemon died
  local what=$1 check=$2 name
  while ! "$check"; do
    for name in $(names); do
      [ -f "$STATE/$name.pid" ] || continue
      if ! owned "$name" >/dev/null; then
        echo "[cluster] error: $name exited during start; end of $STATE/logs/$name.log:" >&2
        tail -n 20 "$STATE/logs/$name.log" >&2 || true
        stop >&2
        exit 1
      fi
    done
    if [ $SECONDS -ge "$DEADLINE" ]; then
      echo "[cluster] error: no $what after ${TIMEOUT}s ($(alive_workers) workers ALIVE);" \
           "logs in $STATE/logs" >&2
      stop >&2
      exit 1
    fi
    sleep 0.3
  done
}

start() {
  if running; then
    echo "[cluster] already running"
    status
    return 0
  fi
  if [ -f "$ENV_FILE" ] || ls "$STATE"/*.pid >/dev/null 2>&1; then
    echo "[cluster] partly running or stale state in $STATE: stopping what is left first"
    stop
  fi
  [ -x "$PYTHON" ] || die "no Python at $PYTHON; run scripts/setup.sh (or set PYTHON)"
  SPARK_HOME=${CLUSTER_SPARK_HOME:-$("$PYTHON" -c \
    'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}
  [ -x "$SPARK_HOME/bin/spark-class" ] || die "no bin/spark-class under $SPARK_HOME"
  command -v java >/dev/null || [ -n "${JAVA_HOME:-}" ] ||
    die "no java on PATH (scripts/setup.sh installs one)"
  command -v curl >/dev/null || die "curl is needed to read the master's status page"

  local ports i
  DEADLINE=$((SECONDS + TIMEOUT))
  read -r -a ports <<<"$(free_ports $((2 + 2 * WORKERS)))"
  PORT=${PORT:-${ports[0]}}
  WEBUI_PORT=${WEBUI_PORT:-${ports[1]}}
  rm -rf "$STATE/logs"
  mkdir -p "$STATE/logs" "$STATE/conf"
  # an empty properties file (and conf dir) of our own: no spark-defaults.conf or spark-env.sh
  # from elsewhere leaks in; the master's and workers' command lines name this folder
  : >"$STATE/conf/daemon.properties"
  cat >"$ENV_FILE" <<EOF
MASTER_URL=spark://127.0.0.1:$PORT
MASTER_PORT=$PORT
MASTER_WEBUI_PORT=$WEBUI_PORT
WORKER_COUNT=$WORKERS
SPARK_HOME=$SPARK_HOME
EOF
  export SPARK_HOME SPARK_CONF_DIR=$STATE/conf SPARK_LOCAL_IP=127.0.0.1 \
    SPARK_DAEMON_MEMORY=${SPARK_DAEMON_MEMORY:-512m}
  SETSID=$(command -v setsid || true)  # detach from this terminal's signals (Ctrl-C)

  echo "[cluster] starting master spark://127.0.0.1:$PORT (UI http://127.0.0.1:$WEBUI_PORT)"
  launch master "$MASTER_CLASS" --host 127.0.0.1 --port "$PORT" --webui-port "$WEBUI_PORT" \
    --properties-file "$STATE/conf/daemon.properties"
  # workers that start before the master answers retry only after 5-15 s: wait for it first
  wait_for "the master's status page" master_up
  for i in $(seq 1 "$WORKERS"); do
    mkdir -p "$STATE/work/worker-$i" "$STATE/local/worker-$i"
    echo "[cluster] starting worker-$i ($CORES core(s), $MEMORY; work dir $STATE/work/worker-$i)"
    SPARK_LOCAL_DIRS=$STATE/local/worker-$i SPARK_WORKER_DIR=$STATE/work/worker-$i \
      launch "worker-$i" "$WORKER_CLASS" --host 127.0.0.1 \
      --port "${ports[2 * i]}" --webui-port "${ports[2 * i + 1]}" \
      --cores "$CORES" --memory "$MEMORY" --work-dir "$STATE/work/worker-$i" \
      --properties-file "$STATE/conf/daemon.properties" "spark://127.0.0.1:$PORT"
  done

  wait_for "$WORKERS ALIVE workers" workers_up
  echo "[cluster] up: $(alive_workers) workers ALIVE"
  status
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) load_env && running || { echo "[cluster] not running" >&2; exit 3; }; echo "$MASTER_URL" ;;
  -h|--help|help) usage 0 ;;
  *) die "unknown command '$CMD'; use start, stop, status or url" ;;
esac
