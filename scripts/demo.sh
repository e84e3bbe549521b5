#!/usr/bin/env bash
# The main job on embedded defaults: prepare Fashion-MNIST (kept between runs), then tune an
# MLP (about 10 minutes on 2 cores), retrain the best and print the summary. Rerunning with the
# same DEMO_SEARCH name resumes or, when finished, just prints the result. VENV is the profile's
# environment (make sets it: .venv, or .venv-current with PROFILE=current); Spark's local Python
# workers run that venv's interpreter (sparkdl_tune.driver.session sets PYSPARK_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# Each profile keeps its own output folder and MLflow store, so the second profile's demo runs
# its own search instead of printing the other profile's finished one.
if [ "${PROFILE:-classic}" = current ]; then
  OUT=${1:-out/demo-current}; STORE=${DEMO_STORE:-mlflow-current.db}
else
  OUT=${1:-out/demo}; STORE=${DEMO_STORE:-mlflow.db}
fi
export MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-sqlite:///$PWD/$STORE}
DATA=${DEMO_DATA:-data/fashion-mnist}
CLI=$VENV/bin/sparkdl-tune
mkdir -p "$OUT"

if [ -f "$DATA/manifest.json" ]; then
  echo "[demo] dataset already prepared at $DATA (delete it to prepare again)"
  "$CLI" validate --dataset "$DATA"
else
  echo "[demo] preparing Fashion-MNIST -> $DATA"
  "$CLI" prepare fashion-mnist --out "$DATA" > "$OUT/manifest.json"
fi
cp "$DATA/manifest.json" "$OUT/manifest.json"
echo "[demo] manifest ($OUT/manifest.json):"
"$VENV/bin/python" - "$OUT/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"  layout: {m['layout']['feature_kind']} '{m['layout']['features'][0]}' x {m['num_features']},"
      f" label '{m['layout']['label']}', {m['layout']['num_classes']} classes")
print("  rows:", ", ".join(f"{k} {v:,}" for k, v in m["rows"].items()))
print("  schema:", m["schema"])
print("  train class counts:", m["class_counts"]["train"])
print("  feature stats:", {k: round(v, 4) for k, v in m["feature_stats"]["features"].items()})
PY

SEARCH=${DEMO_SEARCH:-fashion-mlp-demo}
echo "[demo] tuning search '$SEARCH' (conf/jobs/fashion_tune.yaml; MLflow store $MLFLOW_TRACKING_URI)"
"$CLI" tune conf/jobs/fashion_tune.yaml data.path="$DATA" search.name="$SEARCH" \
  search.output_dir="$OUT/tune" > "$OUT/tune-summary.json"
"$VENV/bin/python" - "$OUT/tune-summary.json" "$VENV" "$MLFLOW_TRACKING_URI" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))  # stdout of tune is exactly one JSON document
print(f"[demo] search '{s['search']}': {s.get('trials')} trials ({s.get('failed')} failed), "
      f"{s.get('execution_mode')} mode, best trial {s.get('best_trial')} "
      f"{s.get('metric')} {s.get('best_' + str(s.get('metric')), float('nan')):.4f}")
print("[demo] best parameters:", json.dumps(s.get("best_params"), default=str))
final = s.get("final") or {}
if final:
    print(f"[demo] final model (train+validation, {final.get('epochs')} epochs): "
          + ", ".join(f"{k} {v:.4f}" for k, v in final.get("test_metrics", {}).items()))
    print(f"[demo] model {final.get('model_uri')} in MLflow run {final.get('run_id')}")
print(f"[demo] summary: {sys.argv[1]}; browse runs with: {sys.argv[2]}/bin/mlflow ui --backend-store-uri {sys.argv[3]}")
PY
