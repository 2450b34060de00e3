#!/usr/bin/env bash
# The GPU table on a lent GPU machine (the session's `device` tool), in one call.
#
# Here, once:   python3 -m pip download --no-deps -d .wheels lark array-api-compat
# Then:         device run with carry [".wheels"] and the command
#               bash benchmarks/gpu_device.sh
#
# That machine has NumPy, opt_einsum, torch, JAX and CuPy, but not lark or
# array-api-compat, and nothing can be fetched there: the two travel as wheels (pure
# Python) in .wheels/, which .gitignore keeps out of the repository. tensorcalc itself
# runs from the working tree. The table is printed and written to $OUT/gpu_table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --no-index --no-deps --find-links .wheels lark array-api-compat
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import tensorcalc, torch; print('tensorcalc', tensorcalc.__version__, '; torch sees a GPU:', torch.cuda.is_available())"
set -o pipefail
timeout 420 python3 benchmarks/gpu_check.py "$@" 2>&1 | tee "${OUT:-.}/gpu_table.md"
