#!/bin/bash
# rlcausality's GPU check: the project's own entry points and gpu_bench on random, architecture-true
# models. Run from the repo root after the wheels are installed (see the `run` command below).
# Steps run in order of value; each has its own time limit, none starts after RLC_DEADLINE seconds,
# and OUT/results.json + OUT/summary.md are rewritten after every step (a cut run keeps its figures).
#
# Device:  bash benchmarks/device_check/device_check.sh   (wheels: README.md)
# A rerun of some steps only: RLC_ONLY="make_qwen sft_q4_z2" (grpo needs sft_z2, eval needs grpo).
# CPU dry run of the plumbing (tiny dims, DeepSpeed through the tests' CPU shim):
#          RLC_SMOKE=1 OUT=/tmp/out bash benchmarks/device_check/device_check.sh
set -u
KIT=$(cd "$(dirname "$0")" && pwd)
REPO=$(pwd)
OUT=${OUT:-/tmp/gpucheck-out}
W=${RLC_WORK:-/tmp/gpucheck}
DEADLINE=${RLC_DEADLINE:-480}
SMOKE=${RLC_SMOKE:-}
PY=${PYTHON:-python3}
TORCHRUN=${TORCHRUN:-"$PY -m torch.distributed.run"}  # the rules call `torchrun`; env_probe records whether it is on PATH
mkdir -p "$OUT" "$W/peaks" "$W/bench" "$W/runs" "$W/settings"
export RLC_PEAK_DIR=$W/peaks PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false PYTHONPATH=${PYTHONPATH:-}:$REPO/workflow_scripts:$REPO
# gpu_bench: SFT 2 warm-up + 3 timed steps at 1024 tokens; GRPO 1 warm-up + 1 timed step of the
# recipe's round (4 prompts x 4 completions) of 96 new tokens, rollout and update timed apart;
# evaluation generation 16 x 96 (a decode step took ~60 ms on the H200 machine: longer runs do
# not fit its lease). The rollout-only generation is left out: the GRPO step has it.
BENCH_FLAGS="--gen-prompts 4 --gen-tokens= --eval-tokens 96 --grpo-steps 2 --grpo-tokens 96 --warmup-steps 2 --steps 3 --vllm-models="
MAKE_FLAGS=""
if [ -n "$SMOKE" ]; then
  export RLCAUSALITY_TEST_DEEPSPEED_CPU=1 PYTHONPATH=$REPO/tests/workflow/deepspeed_cpu:$PYTHONPATH
  export OMP_NUM_THREADS=1
  BENCH_FLAGS="--smoke --vllm-models="
  MAKE_FLAGS="--smoke"
fi
# Random models: /dev/shm when it holds 40 GB, else local disk.
ROOT=/dev/shm/gpucheck
FREE=$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
if [ -z "$FREE" ] || [ "$FREE" -lt 41943040 ]; then ROOT=$W/models; fi
mkdir -p "$ROOT"
for f in "$KIT"/settings/*.json; do sed "s#/dev/shm/gpucheck#$ROOT#g" "$f" > "$W/settings/$(basename "$f")"; done
S=$W/settings; D=$KIT/data; R=$W/runs
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu,power.draw,clocks.sm \
  --format=csv,noheader -l 1 > "$OUT/gpu.csv" 2>/dev/null &
SMI=$!
: > "$OUT/log.txt"

step() {  # NAME LIMIT_S CMD...: run with a limit, log it, refresh the results
  local name=$1 limit=$2; shift 2
  if [ -n "${RLC_ONLY:-}" ] && [[ " $RLC_ONLY " != *" $name "* ]]; then return; fi
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -le 25 ]; then
    echo "{\"step\":\"$name\",\"skipped\":\"deadline (t=${SECONDS}s)\"}" >> "$W/steps.jsonl"
    echo "=== $name skipped: deadline" | tee -a "$OUT/log.txt"; return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name: limit ${limit}s, t=${SECONDS}s" | tee -a "$OUT/log.txt"
  local t0=$SECONDS
  timeout -k 15 "$limit" "$@" > "$W/$name.log" 2>&1
  local rc=$?
  echo "{\"step\":\"$name\",\"rc\":$rc,\"wall_s\":$((SECONDS - t0)),\"limit_s\":$limit,\"t_end\":$SECONDS}" >> "$W/steps.jsonl"
  { echo "--- $name rc=$rc $((SECONDS - t0))s"; tail -c 60000 "$W/$name.log"; } >> "$OUT/log.txt"
  grep -E "^progress|Error|error:|MAKE_MODEL|Traceback" "$W/$name.log" | tail -n 8
  echo "--- $name rc=$rc $((SECONDS - t0))s"
  $PY "$KIT/collect.py" "$W" "$OUT" > /dev/null 2>&1
}

q=qwen2.5-1.5b
TR="$TORCHRUN --standalone --nproc_per_node=1"
# 0. the environment, bitsandbytes' CUDA library, DeepSpeed's accelerator, project imports
$PY "$KIT/env_probe.py" "$W/env.json" > "$W/env.out" 2> "$W/env.err"; echo "env rc=$?: $(head -c 3000 "$W/env.out")"
$PY "$KIT/collect.py" "$W" "$OUT" > /dev/null 2>&1
# 1. a random Qwen2.5-1.5B folder (bf16, 3.1 GB) with the kit tokenizer
step make_qwen 90 $PY "$KIT/make_model.py" $q "$ROOT/$q" $MAKE_FLAGS
# 2. SFT as the workflow starts it on a GPU: torchrun + DeepSpeed ZeRO-2 (NCCL), adapter + merge
step sft_z2 150 $TR "$KIT/peak.py" sft_z2 rlcausality.training.sft --settings "$S/sft_z2.json" \
  --train "$D/trace_train.jsonl" --output-dir "$R/sft_z2" --manifest "$R/sft_z2/manifest.json" --threads 8
# 3. GRPO as configured for qwen (python -m, no DeepSpeed), continuing the SFT adapter
#    (from the base model when the SFT step left no adapter, so GRPO on CUDA is still tried)
GRPO_INIT=(--init-manifest "$R/sft_z2/manifest.json")
if [ ! -f "$R/sft_z2/manifest.json" ]; then
  $PY -c "import json,sys; s=json.load(open(sys.argv[1])); s['grpo']['init']='base'; json.dump(s, open(sys.argv[2],'w'))" \
    "$S/grpo.json" "$S/grpo_base.json"
  cp "$S/grpo_base.json" "$S/grpo.json"; GRPO_INIT=(); echo "grpo: no SFT manifest, init base" | tee -a "$OUT/log.txt"
fi
step grpo 150 $PY "$KIT/peak.py" grpo rlcausality.training.grpo --settings "$S/grpo.json" \
  --train "$D/grpo_train.jsonl" "${GRPO_INIT[@]}" \
  --output-dir "$R/grpo" --manifest "$R/grpo/manifest.json" --threads 8
# 4. evaluation of the GRPO stage (adapter merged in memory), 32 items x 256 new tokens
#    (of the SFT stage when GRPO left no manifest, of the base when neither did)
EVAL_STAGE=(--stage grpo --manifest "$R/grpo/manifest.json")
[ -f "$R/grpo/manifest.json" ] || EVAL_STAGE=(--stage sft --manifest "$R/sft_z2/manifest.json")
[ -f "$R/grpo/manifest.json" ] || [ -f "$R/sft_z2/manifest.json" ] || EVAL_STAGE=(--stage base)
step eval 90 $PY "$KIT/peak.py" eval rlcausality.evaluation.evaluate --settings "$S/eval.json" "${EVAL_STAGE[@]}" \
  --test-set test --data "$D/grpo_test.jsonl" \
  --predictions "$R/eval/predictions.jsonl" --metrics "$R/eval/metrics.json" --threads 8
# 5. QLoRA (r1-7b's path) on the 1.5B: nf4 + ZeRO-2 under torchrun, SFT then GRPO from the base
step sft_q4_z2 120 $TR "$KIT/peak.py" sft_q4_z2 rlcausality.training.sft --settings "$S/sft_q4_z2.json" \
  --train "$D/trace_train.jsonl" --output-dir "$R/sft_q4_z2" --manifest "$R/sft_q4_z2/manifest.json" --threads 8
step grpo_q4_z2 120 $TR "$KIT/peak.py" grpo_q4_z2 rlcausality.training.grpo --settings "$S/grpo_q4_z2.json" \
  --train "$D/grpo_train.jsonl" --output-dir "$R/grpo_q4_z2" --manifest "$R/grpo_q4_z2/manifest.json" --threads 8
rm -rf "$ROOT/$q"
# 6. gpu_bench, one model per process (its JSON is written only at the end of a process):
#    SFT step (bs 1 x 1024, r64) + rollout 4x4x512 + eval 16x256, plan estimates beside them
step bench_qwen 90 $PY -m benchmarks.gpu_bench --models $q $BENCH_FLAGS --out "$W/bench/bench_qwen.json"
# r1-7b before phi: the 4-bit constants and the recipe's "7-8 GB" claim; shorter generations
R1_FLAGS=$BENCH_FLAGS
[ -z "$SMOKE" ] && R1_FLAGS="--gen-prompts 4 --gen-tokens= --eval-tokens 64 --grpo-steps 2 --grpo-tokens 64 --warmup-steps 2 --steps 3 --vllm-models="
step bench_r1 180 $PY -m benchmarks.gpu_bench --models deepseek-r1-7b $R1_FLAGS --tmp-dir "$ROOT" \
  --out "$W/bench/bench_r1.json"
step bench_phi 110 $PY -m benchmarks.gpu_bench --models phi-3.5-mini $BENCH_FLAGS --out "$W/bench/bench_phi.json"
# 7. opt-in (RLC_ONLY=bench_qwen_z2; it has not run on a GPU yet): the benchmark's own DeepSpeed
#    path, torchrun + ZeRO-2 (NCCL), qwen, short shapes
Z2_FLAGS="--gen-prompts 2 --gen-tokens= --eval-tokens= --grpo-steps 2 --grpo-tokens 64 --warmup-steps 1 --steps 2 --vllm-models="
[ -n "$SMOKE" ] && Z2_FLAGS="--smoke --gen-tokens= --eval-tokens= --vllm-models="
[[ " ${RLC_ONLY:-} " == *" bench_qwen_z2 "* ]] && step bench_qwen_z2 60 $TR -m benchmarks.gpu_bench --models $q --deepspeed zero2 $Z2_FLAGS \
  --out "$W/bench/bench_qwen_z2.json"
kill "$SMI" 2>/dev/null
$PY "$KIT/collect.py" "$W" "$OUT"
echo "total ${SECONDS}s"
