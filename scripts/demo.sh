#!/usr/bin/env bash
# The main job on embedded defaults: prepare Fashion-MNIST (kept between runs), then train.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/demo}
DATA=${DEMO_DATA:-data/fashion-mnist}
CLI=.venv/bin/sparkdl-tune
mkdir -p "$OUT"

if [ -f "$DATA/manifest.json" ]; then
  echo "[demo] dataset already prepared at $DATA (delete it to prepare again)"
  $CLI validate --dataset "$DATA"
else
  echo "[demo] preparing Fashion-MNIST -> $DATA"
  $CLI prepare fashion-mnist --out "$DATA" > "$OUT/manifest.json"
fi
cp "$DATA/manifest.json" "$OUT/manifest.json"
echo "[demo] manifest ($OUT/manifest.json):"
.venv/bin/python - "$OUT/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"  layout: {m['layout']['feature_kind']} '{m['layout']['features'][0]}' x {m['num_features']},"
      f" label '{m['layout']['label']}', {m['layout']['num_classes']} classes")
print("  rows:", ", ".join(f"{k} {v:,}" for k, v in m["rows"].items()))
print("  schema:", m["schema"])
print("  train class counts:", m["class_counts"]["train"])
print("  feature stats:", {k: round(v, 4) for k, v in m["feature_stats"]["features"].items()})
PY
