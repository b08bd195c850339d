#!/usr/bin/env bash
# Prepare a Jetson for the Early-Bird suite, whatever its JetPack: detects the family from
# /etc/nv_tegra_release (L4T R32 = JetPack 4, R35 = 5, R36 = 6, R38/R39 = 7) and installs what runs
# need there: numpy, NVIDIA's torch build for that JetPack, pyserial, jetson-stats (jtop) and its
# service, the udev rule for a serial power meter; with --clocks, the MAXN power mode and pinned clocks.
# Idempotent: a step whose result is already there is skipped. --check changes nothing and only reports.
# See README.md next to this file.
#
#   bash hw/jetson/setup.sh [--check] [--clocks] [--mode N] [--no-torch] [--torchvision]
#
#   --check        report the family, Python, torch, jtop, power mode and clocks; install nothing
#   --clocks       set the power mode (MAXN, read from /etc/nvpmodel.conf, or --mode N) and run jetson_clocks
#   --no-torch     skip torch (e.g. it comes from a container or a venv: use ebt's ?python=PATH then)
#   --torchvision  also install torchvision (CIFAR and ImageNet need it; the digits set does not)
#
# Environment: TORCH_WHEEL_URL (JetPack 4/5) or TORCH_INDEX_URL (JetPack 6/7) override where torch comes
# from; EBT_JETSON_ROOT reads the board files under another folder (tests).
#
# Sources: NVIDIA forum thread "PyTorch for Jetson" (JetPack 4.6 wheels), NVIDIA "Installing PyTorch for
# Jetson Platform" (JetPack 5 redist wheels), the Jetson AI Lab pip index (JetPack 6 jp6/cu126, JetPack 7
# sbsa/cu130), jetson-stats README (install, service, --break-system-packages on Ubuntu 24.04), NVIDIA
# Jetson Linux Developer Guide "Power Management" (nvpmodel, jetson_clocks).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ROOT="${EBT_JETSON_ROOT:-}"
CHECK=0; CLOCKS=0; TORCH=1; VISION=0; MODE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1 ;;
    --clocks) CLOCKS=1 ;;
    --mode) MODE="${2:?--mode needs a number}"; shift ;;
    --no-torch) TORCH=0 ;;
    --torchvision) VISION=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '\n== %s\n' "$*"; }
cannot() { printf 'CANNOT: %s\n' "$*"; }

# --- what board and which JetPack family ---------------------------------------------------------
RELEASE="$(head -1 "$ROOT/etc/nv_tegra_release" 2>/dev/null || true)"
L4T="$(printf '%s' "$RELEASE" | sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9.]*\).*/\1.\2/p')"
MODEL="$(tr -d '\0' 2>/dev/null < "$ROOT/proc/device-tree/model" || echo 'unknown board')"
case "${L4T%%.*}" in
  32) FAMILY=4; PY=3.6;  NUMPY="numpy>=1.19,<1.20"; JTOP="jetson-stats<5"; VISION_TAG=v0.11.1
      WHEEL="${TORCH_WHEEL_URL:-https://nvidia.box.com/shared/static/fjtbno0vpo676a25cgvuqc1wty0fkkg6.whl}"
      WHEEL_NAME="torch-1.10.0-cp36-cp36m-linux_aarch64.whl"; INDEX="" ;;
  35) FAMILY=5; PY=3.8;  NUMPY="numpy<2"; JTOP="jetson-stats"; VISION_TAG=v0.15.1
      WHEEL="${TORCH_WHEEL_URL:-https://developer.download.nvidia.com/compute/redist/jp/v511/pytorch/torch-2.0.0+nv23.05-cp38-cp38-linux_aarch64.whl}"
      WHEEL_NAME="${WHEEL##*/}"; INDEX="" ;;
  36) FAMILY=6; PY=3.10; NUMPY="numpy<2"; JTOP="jetson-stats"; VISION_TAG=""
      INDEX="${TORCH_INDEX_URL:-https://pypi.jetson-ai-lab.io/jp6/cu126}"; WHEEL="" ;;
  38|39) FAMILY=7; PY=3.12; NUMPY="numpy"; JTOP="jetson-stats"; VISION_TAG=""
      INDEX="${TORCH_INDEX_URL:-https://pypi.jetson-ai-lab.io/sbsa/cu130}"; WHEEL="" ;;
  *) FAMILY=""; PY="" ;;
esac
say "board"
echo "$MODEL"
if [ -z "$FAMILY" ]; then
  cannot "no known L4T release in $ROOT/etc/nv_tegra_release (${RELEASE:-missing}): not a Jetson, or a JetPack this script does not know. Install numpy, torch and jetson-stats by hand (README.md next to this file)."
  [ "$CHECK" = 1 ] && exit 0 || exit 2
fi
echo "L4T R$L4T -> JetPack $FAMILY family: Python $PY"
if [ -n "$WHEEL" ]; then echo "torch: NVIDIA wheel $WHEEL"; else echo "torch: pip index $INDEX"; fi

PIP=(python3 -m pip install --user)
SUDO_PIP=(sudo -H python3 -m pip install)
if [ "$FAMILY" = 7 ]; then  # Ubuntu 24.04 marks the system Python externally managed (PEP 668)
  PIP+=(--break-system-packages); SUDO_PIP+=(--break-system-packages)
fi

have_python() {
  local found
  found="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)"
  echo "python3: $found (JetPack $FAMILY ships $PY)"
  [ "$found" = "$PY" ] || cannot "python3 is $found, not $PY: NVIDIA's torch builds for JetPack $FAMILY are for Python $PY only; use the system python3 or point ebt at one with ?python=PATH"
}

torch_state() {
  python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.cuda.is_available())' 2>/dev/null \
    || echo "torch: not importable by python3"
}

# MAXN's id on this board (AGX Orin 0, Orin Nano/NX with JetPack 6.2: MAXN_SUPER), from nvpmodel's config.
maxn_mode() {
  sed -n 's/.*POWER_MODEL ID=\([0-9]*\) NAME=\(MAXN[A-Z_]*\).*/\1 \2/p' "$ROOT/etc/nvpmodel.conf" 2>/dev/null | tail -1
}

report() {
  say "check"
  have_python
  torch_state
  if command -v jtop >/dev/null; then echo "jtop: $(command -v jtop)"; else echo "jtop: not installed"; fi
  if systemctl is-active --quiet jtop.service 2>/dev/null; then echo "jtop.service: active"; else echo "jtop.service: not active"; fi
  echo "power mode: $(nvpmodel -q 2>/dev/null | tr '\n' ' ' || true)"
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
if [ "$FAMILY" = 4 ]; then BLAS=libopenblas-base; else BLAS=libopenblas-dev; fi
sudo apt-get update
sudo apt-get install -y python3-pip python3-dev "$BLAS" libopenmpi-dev libomp-dev libjpeg-dev zlib1g-dev git

say "python packages: $NUMPY, pyserial"
[ "$FAMILY" = 4 ] && python3 -m pip install --user --upgrade "pip<22"  # pip 21.3 is the last for Python 3.6
"${PIP[@]}" "$NUMPY" pyserial

install_torch() {
  if python3 -c "import torch" 2>/dev/null; then
    echo "torch $(python3 -c 'import torch; print(torch.__version__)') already installed"
  elif [ -n "$WHEEL" ]; then
    local tmp; tmp="$(mktemp -d)"
    wget -q --show-progress "$WHEEL" -O "$tmp/$WHEEL_NAME"
    "${PIP[@]}" "$tmp/$WHEEL_NAME"
    rm -rf "$tmp"
  else
    "${PIP[@]}" --index-url "$INDEX" torch
  fi
}

install_torchvision() {
  if python3 -c "import torchvision" 2>/dev/null; then
    echo "torchvision $(python3 -c 'import torchvision; print(torchvision.__version__)') already installed"
  elif [ -n "$VISION_TAG" ]; then
    say "torchvision $VISION_TAG from source (30-60 minutes)"
    local tmp; tmp="$(mktemp -d)"
    git clone --depth 1 --branch "$VISION_TAG" https://github.com/pytorch/vision "$tmp/vision"
    (cd "$tmp/vision" && BUILD_VERSION="${VISION_TAG#v}" python3 setup.py install --user)
    rm -rf "$tmp"
  else
    "${PIP[@]}" --index-url "$INDEX" torchvision
  fi
}

if [ "$TORCH" = 1 ]; then
  say "torch for JetPack $FAMILY"
  install_torch
  [ "$VISION" = 1 ] && install_torchvision
  python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.cuda.is_available())" \
    || cannot "torch does not import: check the wheel matches Python $PY and JetPack $FAMILY"
fi

say "jetson-stats (jtop) and its service"
command -v jtop >/dev/null || "${SUDO_PIP[@]}" -U "$JTOP"
if ! systemctl is-active --quiet jtop.service; then
  sudo systemctl enable --now jtop.service 2>/dev/null || sudo jtop --install-service \
    || cannot "jtop.service is not active; see jetson-stats' README (or use the ina3221 meter, no service needed)"
fi
getent group jtop >/dev/null && sudo usermod -aG jtop "$USER"

say "serial power meter: udev rule and dialout group"
sudo install -m 0644 "$HERE/99-ebt-power-meter.rules" /etc/udev/rules.d/99-ebt-power-meter.rules
sudo udevadm control --reload-rules
sudo udevadm trigger --subsystem-match=tty
sudo usermod -aG dialout "$USER"

if [ "$CLOCKS" = 1 ]; then
  read -r MAXN_ID MAXN_NAME <<< "$(maxn_mode)" || true
  MODE="${MODE:-${MAXN_ID:-}}"
  if [ -z "$MODE" ]; then
    cannot "no MAXN mode in /etc/nvpmodel.conf: pick one from 'nvpmodel -q --verbose' and pass --mode N"
  else
    say "power mode $MODE ${MAXN_NAME:-} (nvpmodel) and clocks pinned (jetson_clocks)"
    [ -f "$HOME/.ebt-jetson-clocks" ] || sudo jetson_clocks --store "$HOME/.ebt-jetson-clocks"
    sudo nvpmodel -m "$MODE"
    sudo jetson_clocks
    echo "restore later with: sudo jetson_clocks --restore $HOME/.ebt-jetson-clocks"
  fi
fi

report
(cd "$REPO" && python3 -m hw meters) || cannot "python3 -m hw meters failed (see above)"
echo
echo "done. Log out and back in (groups jtop, dialout). Power mode and clocks reset at reboot: rerun with --clocks."
echo "From the laptop: ebt doctor --target ssh://$(hostname)"
