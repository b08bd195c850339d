#!/usr/bin/env bash
# Prepare a Jetson for the Early-Bird suite, whatever its JetPack. It reads the L4T release from
# /etc/nv_tegra_release and the board from /proc/device-tree/model, then installs what runs need there:
# numpy, a torch built for this board and JetPack plus the CUDA libraries that torch needs, pyserial,
# jetson-stats (jtop) and its service, the udev rule for a serial power meter; with --clocks, the MAXN
# power mode and pinned clocks. Torch counts as working only once a small convolution ran forward and
# backward on the GPU. Every step prints `ok`, `skip` or `CANNOT: <why>; <fix>` and the next step runs
# anyway; the exit status is the number of steps that could not be done (0: all done). Idempotent: a step
# whose result is already there is skipped. --check changes nothing and only reports. See README.md here.
#
#   bash hw/jetson/setup.sh [--check] [--clocks] [--mode N] [--no-torch] [--torchvision]
#
#   --check        report the board, JetPack, Python, torch (with the GPU check), jtop, power mode, clocks
#   --clocks       set the power mode (MAXN, read from /etc/nvpmodel.conf, or --mode N) and run jetson_clocks
#   --no-torch     skip torch (e.g. it comes from a container or a venv: use ebt's ?python=PATH then)
#   --torchvision  also install torchvision (CIFAR and ImageNet need it; the digits set does not)
#
# Environment: TORCH_WHEEL_URL (a wheel file) or TORCH_INDEX_URL (a pip index) replace the torch source on
# every JetPack. EBT_JETSON_ROOT is for the tests only: the board's files (/etc, /proc, /sys, /usr/local)
# are read, and the udev rule written, under that folder instead of /.
#
# Sources (README.md next to this file has the table): NVIDIA forum thread "PyTorch for Jetson" (JetPack
# 4.6), NVIDIA redist wheels jp/v511 and jp/v60, the Jetson AI Lab index (jp6/cu126 for JetPack 6.1/6.2,
# sbsa/cu130 for Thor), cuDSS/NVPL/cuDNN packages from NVIDIA's CUDA apt repository, jetson-stats' README,
# NVIDIA Jetson Linux "Power Management" (nvpmodel, jetson_clocks).
set -uo pipefail  # no -e: a failed step is reported and the others still run

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ROOT="${EBT_JETSON_ROOT:-}"
ME="${USER:-$(id -un 2>/dev/null || true)}"
CHECK=0; CLOCKS=0; TORCH=1; VISION=0; MODE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1 ;;
    --clocks) CLOCKS=1 ;;
    --mode) MODE="${2:-}"; [ -n "$MODE" ] || { echo "--mode needs a number (see --help)" >&2; exit 2; }; shift ;;
    --no-torch) TORCH=0 ;;
    --torchvision) VISION=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

FAILED=0
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
say() { printf '\n== %s\n' "$*"; }
cannot() { printf 'CANNOT: %s\n' "$*"; FAILED=$((FAILED + 1)); }

# step WHAT FIX CMD...: run CMD, show its output, and say ok or CANNOT (with its last line and the fix).
step() {
  local what="$1" fix="$2" rc
  shift 2
  "$@" 2>&1 | tee "$LOG"
  rc="${PIPESTATUS[0]}"
  if [ "$rc" = 0 ]; then
    echo "ok: $what"
  else
    cannot "$what failed (exit $rc: $(grep -v '^[[:space:]]*$' "$LOG" | tail -1)); $fix"
  fi
  return "$rc"
}

# --- which board and which JetPack ---------------------------------------------------------------
RELEASE="$(head -1 "$ROOT/etc/nv_tegra_release" 2>/dev/null || true)"
L4T="$(printf '%s' "$RELEASE" | sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9.]*\).*/\1.\2/p')"
MODEL="$(tr -d '\0' 2>/dev/null < "$ROOT/proc/device-tree/model" || true)"
MAJOR="${L4T%%.*}"; REV="${L4T#*.}"; MINOR="${REV%%.*}"
case "$MODEL" in
  *Thor*) GPU=thor ;;
  *Orin*) GPU=orin ;;
  *) GPU=other ;;
esac
case "$MAJOR" in
  32) FAMILY=4.6; PY=3.6 ;;
  35) FAMILY=5; PY=3.8 ;;
  36) if [ "${MINOR:-0}" -lt 4 ]; then FAMILY=6.0; else FAMILY=6.1; fi; PY=3.10 ;;
  38) FAMILY=7; PY=3.12 ;;
  39) FAMILY=7.2; PY=3.12 ;;
  *) FAMILY=""; PY="" ;;
esac

# Where torch comes from (SOURCE: wheel or index, URL) and which CUDA libraries that build needs (LIBS),
# or NO_TORCH saying why there is no known build for this board and release.
NV=https://developer.download.nvidia.com/compute/redist/jp
LAB=https://pypi.jetson-ai-lab.io
SOURCE=""; URL=""; LIBS=""; NO_TORCH=""; NUMPY="numpy<2"; JTOP="jetson-stats"; VISION_TAG=""
case "$FAMILY" in
  4.6) SOURCE=wheel; URL="https://nvidia.box.com/shared/static/fjtbno0vpo676a25cgvuqc1wty0fkkg6.whl"
       NUMPY="numpy==1.19.4"; JTOP="jetson-stats<5"; VISION_TAG=v0.11.1 ;;  # 1.19.5: Illegal instruction
  5) SOURCE=wheel; URL="$NV/v511/pytorch/torch-2.0.0+nv23.05-cp38-cp38-linux_aarch64.whl"; VISION_TAG=v0.15.1 ;;
  6.0) SOURCE=wheel; URL="$NV/v60/pytorch/torch-2.4.0a0+07cecf4168.nv24.05.14710581-cp310-cp310-linux_aarch64.whl" ;;
  6.1) SOURCE=index; URL="$LAB/jp6/cu126"; LIBS="cudss" ;;
  7|7.2)
    NUMPY="numpy"
    case "$GPU" in
      thor) SOURCE=index; URL="$LAB/sbsa/cu130"; LIBS="nvidia-jetpack libcudnn9-cuda-13 nvpl cudss" ;;
      orin) NO_TORCH="JetPack $FAMILY on Orin: the sbsa/cu130 torch is built for Thor and has no kernels for Orin's sm_87 (it imports, then the first GPU operation fails with 'no kernel image is available'), and no Orin build for this release is known here" ;;
      *) NO_TORCH="cannot tell Orin from Thor ('${MODEL:-no model}' in /proc/device-tree/model), and JetPack 7's torch differs between them" ;;
    esac ;;
esac
if [ -n "${TORCH_WHEEL_URL:-}" ]; then SOURCE=wheel; URL="$TORCH_WHEEL_URL"; NO_TORCH=""
elif [ -n "${TORCH_INDEX_URL:-}" ]; then SOURCE=index; URL="$TORCH_INDEX_URL"; NO_TORCH=""; fi

say "board"
echo "${MODEL:-unknown board} (${GPU})"
if [ -z "$FAMILY" ]; then
  cannot "no known L4T release in $ROOT/etc/nv_tegra_release (${RELEASE:-missing}): not a Jetson, or a JetPack this script does not know (JetPack 4.6, 5, 6 and 7 are). Install numpy, torch and jetson-stats by hand (README.md next to this file)."
  [ "$CHECK" = 1 ] && exit 0 || exit 2
fi
echo "L4T R$L4T -> JetPack $FAMILY: Python $PY"
if [ "$MAJOR" = 32 ] && [ "${MINOR:-0}" -lt 4 ]; then
  echo "note: NVIDIA lists its torch 1.10 wheel for L4T R32.4.3 and later; on R$L4T set TORCH_WHEEL_URL to a wheel built for it"
fi
if [ -n "$NO_TORCH" ]; then echo "torch: none known ($NO_TORCH)"
else echo "torch: $SOURCE $URL${LIBS:+ (with $LIBS)}"; fi

PIP=(python3 -m pip install --user)
SUDO_PIP=(sudo -H python3 -m pip install)
if [ "$PY" = 3.12 ]; then  # Ubuntu 24.04 marks the system Python externally managed (PEP 668)
  PIP+=(--break-system-packages); SUDO_PIP+=(--break-system-packages)
fi

have_python() {
  local found
  found="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)"
  echo "python3: $found (JetPack $FAMILY ships $PY)"
  [ "$found" = "$PY" ] || cannot "python3 is $found, not $PY: the torch builds for JetPack $FAMILY are for Python $PY only; use the system python3 or point ebt at one with ?python=PATH"
}

# Success is a convolution forward and backward on the GPU: is_available() is True even when the build has
# no kernels for this GPU.
GPU_CHECK='import torch
x = torch.randn(2, 3, 8, 8, device="cuda", requires_grad=True)
conv = torch.nn.Conv2d(3, 4, 3).cuda()
conv(x).sum().backward()
torch.cuda.synchronize()
print("torch %s: conv forward and backward ran on %s" % (torch.__version__, torch.cuda.get_device_name(0)))'

# What to do about the error a failed GPU check printed (a missing library names its package).
gpu_fix() {
  case "$1" in
    *libcudss*) echo "install cuDSS: sudo apt-get install cudss (NVIDIA's CUDA apt repository, README.md step 1)" ;;
    *libnvpl*) echo "install NVPL: sudo apt-get install nvpl (NVIDIA's CUDA apt repository)" ;;
    *libcudnn.so.9*) echo "install cuDNN 9: sudo apt-get install libcudnn9-cuda-13" ;;
    *libcudart*|*libcublas*) echo "install CUDA: sudo apt-get install nvidia-jetpack" ;;
    *"no kernel image"*) echo "this torch was built for another GPU: remove it (python3 -m pip uninstall torch) and install one for this board (TORCH_WHEEL_URL or TORCH_INDEX_URL)" ;;
    *"No module named 'torch'"*) echo "run this script without --check (or with TORCH_WHEEL_URL / TORCH_INDEX_URL)" ;;
    *) echo "check that the torch build matches Python $PY and JetPack $FAMILY (README.md step 1)" ;;
  esac
}

gpu_check() {
  local out rc
  out="$(python3 -c "$GPU_CHECK" 2>&1)"; rc=$?
  if [ "$rc" = 0 ]; then echo "$out"; return 0; fi
  cannot "torch cannot run on the GPU: $(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -1); $(gpu_fix "$out")"
  return 1
}

numpy_check() {
  local out rc
  out="$(python3 -c 'import numpy; print("numpy", numpy.__version__)' 2>&1)"; rc=$?
  if [ "$rc" = 0 ]; then echo "$out"; return 0; fi
  if [ "$rc" = 132 ] || printf '%s' "$out" | grep -q 'Illegal instruction'; then
    cannot "numpy dies with 'Illegal instruction' (numpy 1.19.5 on Jetson); python3 -m pip install --user numpy==1.19.4, or export OPENBLAS_CORETYPE=ARMV8"
  else
    cannot "numpy does not import: $(printf '%s\n' "$out" | tail -1); python3 -m pip install --user '$NUMPY'"
  fi
  return 1
}

# MAXN's id on this board (AGX Orin 0, Orin Nano/NX with JetPack 6.2: MAXN_SUPER), from nvpmodel's config.
maxn_mode() {
  sed -n 's/.*POWER_MODEL ID=\([0-9]*\) NAME=\(MAXN[A-Z_]*\).*/\1 \2/p' "$ROOT/etc/nvpmodel.conf" 2>/dev/null | tail -1
}

report() {
  say "check"
  have_python
  numpy_check
  if [ "$TORCH" = 1 ] && [ "$CHECK" = 1 ]; then gpu_check; fi  # an install ran it already
  if command -v jtop >/dev/null; then echo "jtop: $(command -v jtop)"; else echo "jtop: not installed"; fi
  if systemctl is-active --quiet jtop.service 2>/dev/null; then echo "jtop.service: active"; else echo "jtop.service: not active"; fi
  echo "power mode: $(nvpmodel -q 2>/dev/null | tr '\n' ' ' || true)(all modes: nvpmodel -p --verbose)"
  echo "MAXN on this board: $(maxn_mode || true)"
  local lo hi
  lo="$(cat "$ROOT/sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq" 2>/dev/null || echo '?')"
  hi="$(cat "$ROOT/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq" 2>/dev/null || echo '?')"
  if [ "$lo" = "$hi" ] && [ "$lo" != "?" ]; then echo "clocks: locked (cpu0 $lo kHz)"; else echo "clocks: not locked (cpu0 $lo..$hi kHz): sudo jetson_clocks"; fi
}

if [ "$CHECK" = 1 ]; then
  report
  exit 0
fi

say "system packages"
if [ "$FAMILY" = 4.6 ]; then BLAS=libopenblas-base; else BLAS=libopenblas-dev; fi
step "apt-get update" "check the network and /etc/apt/sources.list.d" sudo apt-get update
step "system packages" "run: sudo apt-get install -y python3-pip python3-dev $BLAS libopenmpi-dev libomp-dev" \
  sudo apt-get install -y python3-pip python3-dev "$BLAS" libopenmpi-dev libomp-dev libjpeg-dev zlib1g-dev git

say "python packages: $NUMPY, pyserial"
if [ "$PY" = 3.6 ]; then  # pip 21.3 is the last for Python 3.6
  step "pip<22" "python3 -m pip install --user 'pip<22'" python3 -m pip install --user --upgrade "pip<22"
fi
step "$NUMPY and pyserial" "python3 -m pip install --user '$NUMPY' pyserial" "${PIP[@]}" "$NUMPY" pyserial
numpy_check

# NVIDIA's CUDA apt repository (cuDSS, NVPL, cuDNN for CUDA 13), added through its keyring package.
# shellcheck disable=SC2317  # called through step
cuda_repo() {
  local arch=sbsa dist=ubuntu2404 tmp rc
  [ "$FAMILY" = 6.1 ] && { arch=arm64; dist=ubuntu2204; }
  [ -e "$ROOT/usr/share/keyrings/cuda-archive-keyring.gpg" ] && { echo "CUDA apt repository already there"; return 0; }
  tmp="$(mktemp -d)"
  wget -q "https://developer.download.nvidia.com/compute/cuda/repos/$dist/$arch/cuda-keyring_1.1-1_all.deb" \
    -O "$tmp/cuda-keyring.deb" && sudo dpkg -i "$tmp/cuda-keyring.deb" && sudo apt-get update
  rc=$?; rm -rf "$tmp"; return "$rc"
}

cuda_libs() {
  local lib
  say "CUDA libraries this torch needs: $LIBS"
  if [[ " $LIBS " == *" nvidia-jetpack "* ]]; then
    if [ -e "$ROOT/usr/local/cuda" ]; then echo "skip: CUDA is in /usr/local/cuda"
    else step "nvidia-jetpack (CUDA, cuDNN; missing after an ISO install)" "sudo apt-get install nvidia-jetpack" \
      sudo apt-get install -y nvidia-jetpack; fi
  fi
  step "NVIDIA's CUDA apt repository" "see README.md step 1 (cuda-keyring)" cuda_repo
  for lib in $LIBS; do
    [ "$lib" = nvidia-jetpack ] && continue
    step "$lib" "sudo apt-get install $lib (from NVIDIA's CUDA apt repository)" sudo apt-get install -y "$lib"
  done
}

# shellcheck disable=SC2317  # called through step
install_torch() {
  if python3 -c "import torch" >/dev/null 2>&1; then
    echo "skip: torch $(python3 -c 'import torch; print(torch.__version__)' 2>&1) already installed"
  elif [ "$SOURCE" = wheel ]; then
    local tmp rc name="${URL##*/}"
    [ "$FAMILY" = 4.6 ] && [ -z "${TORCH_WHEEL_URL:-}" ] && name="torch-1.10.0-cp36-cp36m-linux_aarch64.whl"
    tmp="$(mktemp -d)"
    wget -q "$URL" -O "$tmp/$name" && "${PIP[@]}" "$tmp/$name"
    rc=$?; rm -rf "$tmp"; return "$rc"
  else
    "${PIP[@]}" --index-url "$URL" torch
  fi
}

# shellcheck disable=SC2317  # called through step
install_torchvision() {
  if python3 -c "import torchvision" >/dev/null 2>&1; then
    echo "skip: torchvision already installed"
  elif [ -n "$VISION_TAG" ]; then
    say "torchvision $VISION_TAG from source (30-60 minutes)"
    local tmp rc
    tmp="$(mktemp -d)"
    git clone --depth 1 --branch "$VISION_TAG" https://github.com/pytorch/vision "$tmp/vision" \
      && (cd "$tmp/vision" && BUILD_VERSION="${VISION_TAG#v}" python3 setup.py install --user)
    rc=$?; rm -rf "$tmp"; return "$rc"
  elif [ "$SOURCE" = index ]; then
    "${PIP[@]}" --index-url "$URL" torchvision
  else
    echo "no torchvision source known for JetPack $FAMILY with a wheel: install it by hand"; return 1
  fi
}

if [ "$TORCH" = 1 ]; then
  say "torch for JetPack $FAMILY on ${MODEL:-this board}"
  if [ -n "$NO_TORCH" ]; then
    cannot "torch: $NO_TORCH; give a build for this board with TORCH_WHEEL_URL=... or TORCH_INDEX_URL=... and run this again"
  else
    [ -n "$LIBS" ] && cuda_libs
    step "torch from $URL" "check the link (they move; TORCH_WHEEL_URL or TORCH_INDEX_URL replace it) and run this again" \
      install_torch
    if [ "$VISION" = 1 ]; then step "torchvision" "install torchvision by hand" install_torchvision; fi
    say "GPU check: a convolution forward and backward"
    gpu_check
  fi
fi

say "jetson-stats (jtop) and its service"
if command -v jtop >/dev/null; then echo "skip: jtop is $(command -v jtop)"
else step "$JTOP" "sudo -H python3 -m pip install -U '$JTOP'" "${SUDO_PIP[@]}" -U "$JTOP"; fi
if systemctl is-active --quiet jtop.service 2>/dev/null; then echo "skip: jtop.service is active"
else
  step "jtop.service" "see jetson-stats' README (or use the ina3221 meter: no service needed)" \
    bash -c 'sudo systemctl enable --now jtop.service 2>/dev/null || sudo jtop --install-service'
fi

say "groups and the serial power meter's udev rule"
if [ -z "$ME" ]; then
  cannot "no user name (\$USER unset, id -un failed): add yourself to the jtop and dialout groups by hand (sudo usermod -aG jtop,dialout NAME)"
else
  if getent group jtop >/dev/null; then step "group jtop for $ME" "sudo usermod -aG jtop $ME" sudo usermod -aG jtop "$ME"; fi
  step "group dialout for $ME" "sudo usermod -aG dialout $ME" sudo usermod -aG dialout "$ME"
fi
step "udev rule" "sudo install -m 0644 hw/jetson/99-ebt-power-meter.rules /etc/udev/rules.d/" \
  sudo install -D -m 0644 "$HERE/99-ebt-power-meter.rules" "$ROOT/etc/udev/rules.d/99-ebt-power-meter.rules"
step "udev reload" "sudo udevadm control --reload-rules && sudo udevadm trigger --subsystem-match=tty" \
  bash -c 'sudo udevadm control --reload-rules && sudo udevadm trigger --subsystem-match=tty'

# nvpmodel asks "Reboot required ... enter YES/yes" for some modes (Orin, Thor): never answered here (stdin
# is empty), since yes reboots the board in the middle of this script.
set_mode() {
  local out rc
  out="$(sudo nvpmodel -m "$1" < /dev/null 2>&1)"; rc=$?
  printf '%s\n' "$out"
  if printf '%s' "$out" | grep -qi 'reboot'; then
    cannot "mode $1 needs a reboot: run \`sudo nvpmodel -m $1\`, answer yes, then run this again"
    return 0
  fi
  [ "$rc" = 0 ] && echo "ok: power mode $1" && return 0
  cannot "sudo nvpmodel -m $1 failed (exit $rc); list the modes with nvpmodel -p --verbose"
}

if [ "$CLOCKS" = 1 ]; then
  read -r MAXN_ID MAXN_NAME <<< "$(maxn_mode)"
  MODE="${MODE:-${MAXN_ID:-}}"
  if [ -z "$MODE" ]; then
    cannot "no MAXN mode in /etc/nvpmodel.conf: pick one from 'nvpmodel -p --verbose' and pass --mode N"
  else
    say "power mode $MODE ${MAXN_NAME:-} (nvpmodel) and clocks pinned (jetson_clocks)"
    if [ ! -f "$HOME/.ebt-jetson-clocks" ]; then
      step "jetson_clocks --store" "sudo jetson_clocks --store ~/.ebt-jetson-clocks" \
        sudo jetson_clocks --store "$HOME/.ebt-jetson-clocks"
    fi
    set_mode "$MODE"
    step "jetson_clocks" "sudo jetson_clocks" sudo jetson_clocks
    echo "restore later with: sudo jetson_clocks --restore $HOME/.ebt-jetson-clocks"
  fi
fi

BEFORE="$FAILED"
report
FAILED="$BEFORE"  # the report repeats what the steps already counted
step "python3 -m hw meters" "see the lines above (README.md step 3)" bash -c "cd '$REPO' && python3 -m hw meters"
echo
echo "Log out and back in (groups jtop, dialout). The power mode stays set across reboots; jetson_clocks does"
echo "not: after a reboot run sudo jetson_clocks (or this script with --clocks) again."
echo "From the laptop: ebt doctor --target ssh://${ME:-USER}@$(hostname 2>/dev/null || echo BOARD)"
if [ "$FAILED" = 0 ]; then echo "done: every step worked."
else echo "done, but $FAILED step(s) could not be done: see the CANNOT lines above."; fi
exit "$FAILED"
