#!/usr/bin/env bash
# Idempotent set-up of one profile's environment; a second run only checks.
#   PROFILE=classic (default): .venv from constraints.txt (Spark 3.5, TensorFlow 2.15 / Keras 2,
#     Petastorm), plus Horovod built against that TensorFlow with Gloo (needs cmake and g++).
#   PROFILE=current: .venv-current from constraints-current.txt (Spark 4.3, TensorFlow 2.21 /
#     Keras 3, numpy 2, pyarrow 25); no Horovod, no Petastorm, nothing to compile.
# Both also need Java, Fashion-MNIST and Chromium (the report test); VENV overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-classic}
case "$PROFILE" in
  classic) LOCK=constraints.txt; DEFAULT_VENV=.venv ;;
  current) LOCK=constraints-current.txt; DEFAULT_VENV=.venv-current ;;
  *) echo "[setup] PROFILE is '$PROFILE'; use PROFILE=classic (the default) or PROFILE=current" >&2
     exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$DEFAULT_VENV}
STAMP="$VENV/.sparkdl_tune_setup"
DATA_DIR=/usr/share/datasets/fashion-mnist

say() { printf '[setup] %s\n' "$*"; }

apt_packages=()
command -v java >/dev/null 2>&1 || apt_packages+=(openjdk-17-jre-headless)
ls "$DATA_DIR"/train-images-idx3-ubyte* >/dev/null 2>&1 || apt_packages+=(dataset-fashion-mnist)
if [ "$PROFILE" = classic ]; then  # the Horovod build
  command -v cmake >/dev/null 2>&1 || apt_packages+=(cmake)
  command -v g++ >/dev/null 2>&1 || apt_packages+=(g++)
fi
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)  # tests/test_report.py
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then apt_packages+=(python3-venv); fi

if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  else
    say "missing system packages; install them and rerun:"
    say "  sudo apt-get install -y ${apt_packages[*]}"
    exit 1
  fi
fi

want=$(cat "$LOCK" pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/sparkdl-tune" ]; then
  say "environment up to date ($VENV, profile $PROFILE)"
  exit 0
fi

[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

say "installing the pinned Python set ($LOCK); first time takes a few minutes"
"${PIP[@]}" install -c "$LOCK" setuptools wheel
"${PIP[@]}" install -c "$LOCK" --no-build-isolation -e ".[dev,$PROFILE]"

if [ "$PROFILE" = classic ] && ! "$VENV/bin/python" -c 'import horovod.tensorflow' >/dev/null 2>&1; then
  say "building Horovod 0.28.1 with TensorFlow + Gloo (about 4 CPU-minutes on a new machine)"
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
  HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS="-j$(nproc)" \
    "${PIP[@]}" install -c constraints.txt --no-build-isolation 'horovod==0.28.1'
fi

"$VENV/bin/python" -m pip check >/dev/null || { "$VENV/bin/python" -m pip check; exit 1; }
echo "$want" > "$STAMP"
say "environment ready ($VENV, profile $PROFILE)"
