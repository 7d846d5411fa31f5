#!/usr/bin/env bash
# The InternVL GPU figures in one device call (at most 9.5 minutes; about 7 expected on an H200).
#
#   here, once:         bash bench/on_device.sh --fetch-wheels   # wheels + rendered samples, into .whl/
#   device tool run:    command "bash bench/on_device.sh", carry [".whl"], timeout_s 600
#   second device run:  command "CHECK=1 bash bench/on_device.sh", carry [".whl"]: `tessera model
#                       check` on the full-size random model (samples/, text, tokens/s, pages/s)
#   CPU smoke test:     TINY=1 bash bench/on_device.sh   (all three, tiny config)
#
# The device image has transformers 5.17; Tessera pins 5.23 (pyproject.toml), so the
# pinned wheel travels in .whl/ (ignored by git through .git/info/exclude), with structlog and
# the sample pages rendered here (.whl/samples: the image has no poppler).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
    # The device image has transformers 5.17 and no structlog (tessera.logs); no poppler either,
    # so the samples CHECK=1 runs are rendered here.
    for wanted in transformers structlog; do
        version=$(grep -o "\"$wanted==[0-9.]*\"" pyproject.toml | tr -d '"')
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_17_x86_64 -d .whl "$version" || exit 1
    done
    rm -rf .whl/samples
    exec "${PYTHON:-.venv/bin/python}" bench/model_check_random.py --prerender .whl/samples
fi

OUT=${OUT:-$(mktemp -d)}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null && [[ -z "${TINY:-}" ]]; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
fi

if [[ -n "${TINY:-}" ]]; then
    gpu_args=(--tiny)
    decode_args=(--rows 3 --prompt 40 --new-tokens 4 --repeats 1)
else
    nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
    mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
    rows=$((mib > 100000 ? 48 : 24))  # 40 GB of LLM weights + 0.72 GB of cache per row
    gpu_args=()
    decode_args=(--size full --rows "$rows" --prompt 3400 --new-tokens 256 --repeats 1 --workloads forced,varied)
fi

if [[ -n "${CHECK:-}" && -z "${TINY:-}" ]]; then
    samples=(); [[ -d .whl/samples ]] && samples=(--samples .whl/samples)
    timeout 540 $PYTHON bench/model_check_random.py --max-new-tokens 256 "${samples[@]}" 2>&1 \
        | tee "$OUT/model_check.log"
    echo "results in $OUT"
    exit
fi

timeout 330 $PYTHON bench/internvl_gpu.py "${gpu_args[@]}" --json "$OUT/internvl_gpu.json" \
    2>&1 | tee "$OUT/internvl_gpu.log"
timeout 230 $PYTHON bench/internvl_decode.py "${decode_args[@]}" 2>&1 | tee "$OUT/internvl_decode.log"
if [[ -n "${TINY:-}" ]]; then
    timeout 120 $PYTHON bench/model_check_random.py --tiny --max-tiles 2 --max-new-tokens 4 \
        2>&1 | tee "$OUT/model_check.log"
fi
echo "results in $OUT"
