#!/usr/bin/env bash
# The wheel as a user gets it: build it from a clean copy of the working tree, check its contents,
# install it into three fresh virtualenvs ([torch] only, [tf] only, [all]) under a temporary folder
# outside the repository, and run .ci/wheel_smoke.py there from a folder outside the repository.
#   .ci/wheel_smoke.sh            (make wheel-smoke; CI runs it after make test)
# PY: the interpreter of the virtualenvs (python3); BUILD_PY: one with `build` (the dev extra);
# TORCH_PIN as in the Makefile (torch==2.13.0 on a Linux machine without nvidia-smi; empty: none).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-python3}"
BUILD_PY="${BUILD_PY:-$REPO/.venv/bin/python}"
case "$BUILD_PY" in */*) BUILD_PY="$(cd "$(dirname "$BUILD_PY")" && pwd)/$(basename "$BUILD_PY")" ;; esac
if [ -z "${TORCH_PIN+set}" ]; then
  TORCH_PIN=""
  if [ "$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1; then TORCH_PIN="torch==2.13.0"; fi
fi
export TF_CPP_MIN_LOG_LEVEL=3 PIP_DISABLE_PIP_VERSION_CHECK=1
unset PYTHONPATH
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lossparity-wheel.XXXXXX")"
# removed in the background: freeing the virtualenvs' GBs takes minutes on a disk mounted with
# `discard`, after the result is known (WHEEL_SMOKE_KEEP=1 keeps them for a look)
cleanup() { if [ -z "${WHEEL_SMOKE_KEEP:-}" ]; then (rm -rf "$WORK" >/dev/null 2>&1 &); else echo "kept $WORK"; fi; }
trap cleanup EXIT
START=$SECONDS
step() { echo "[wheel-smoke] $(( SECONDS - START )) s: $*"; }

# 1. the wheel, from the tracked and not-ignored files only (no stale build/ or *.egg-info)
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/outside"
(cd "$REPO" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
step "building the wheel"
(cd "$WORK/outside" && "$BUILD_PY" -m build --wheel --outdir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1) \
  || { tail -40 "$WORK/build.log"; exit 1; }
WHEEL="$(ls "$WORK"/dist/lossparity-*.whl)"
cp "$REPO/.ci/wheel_smoke.py" "$WORK/smoke.py"
cp -r "$REPO/examples/user_loss" "$WORK/user_pkg"
(cd "$WORK/outside" && "$BUILD_PY" "$WORK/smoke.py" contents "$WHEEL")
unzip -l "$WHEEL" | awk 'NR > 3 {print $4}' | cut -d/ -f1 | sort | uniq -c | awk '$2 != "" {print "  " $0}'

# 2. one fresh virtualenv per extra, the three at once (mostly unpacking: I/O, not CPU); no .pyc
#    compiled at install time (a smoke test imports a small part of torch and TensorFlow)
quiet_pip() { grep -v "^WARNING: Location '.*' is ignored" || true; }
env_smoke() {  # env_smoke NAME EXTRA PIN MODE [ARG]: install, then smoke from outside the repository
  local env="$WORK/venv-$1" t0=$SECONDS
  "$PY" -m venv "$env"
  if [ -n "$3" ]; then "$env/bin/python" -m pip install -q --no-compile "$3" 2>&1 | quiet_pip; fi
  "$env/bin/python" -m pip install -q --no-compile "$WHEEL[$2]" 2>&1 | quiet_pip
  if [ "$1" = tf ] && "$env/bin/python" -m pip show -q mpmath >/dev/null 2>&1; then
    echo "mpmath was pulled in by a dependency: uninstalled (tf_impl must import without it)"
    "$env/bin/python" -m pip uninstall -y -q mpmath
  fi
  echo "[$1] installed in $(( SECONDS - t0 )) s"
  (cd "$WORK/outside" && "$env/bin/python" "$WORK/smoke.py" "$4" ${5:+"$5"})
  echo "[$1] done in $(( SECONDS - t0 )) s"
}
step "installing [torch], [tf], [all] into fresh virtualenvs"
env_smoke torch torch "$TORCH_PIN" torch >"$WORK/torch.log" 2>&1 & pid_torch=$!
env_smoke tf tf "" tf >"$WORK/tf.log" 2>&1 & pid_tf=$!
env_smoke all all "$TORCH_PIN" all "$WORK/user_pkg" >"$WORK/all.log" 2>&1 & pid_all=$!
failed=""
for name in torch tf all; do
  pid_var="pid_$name"
  if ! wait "${!pid_var}"; then failed="$failed [$name]"; fi
  echo "---- [$name]"; grep -v -e "oneDNN custom operations are on" -e "before absl::InitializeLog() is called" "$WORK/$name.log" | tail -60
done
if [ -n "$failed" ]; then step "FAILED:$failed"; exit 1; fi
step "passed"
