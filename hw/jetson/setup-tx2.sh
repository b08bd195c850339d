#!/usr/bin/env bash
# Prepare a Jetson TX2 on JetPack 4.6.x (L4T R32.7, Ubuntu 18.04, Python 3.6) for the Early-Bird suite:
# NVIDIA's torch 1.10 wheel, torchvision 0.11.1 from source, numpy/pyserial, jetson-stats (jtop),
# a udev rule for a serial power meter, and (with --clocks) MAXN + jetson_clocks for repeatable power.
# Idempotent: steps whose result is already there are skipped. See README.md next to this file.
#
#   bash hw/jetson/setup-tx2.sh [--clocks] [--no-torch]
#
# Sources: NVIDIA forum thread "PyTorch for Jetson" (wheel for JetPack 4.6: torch 1.10.0, cp36),
# jetson-stats docs (rbonghi/jetson_stats), NVIDIA L4T Developer Guide (nvpmodel, jetson_clocks).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# NVIDIA's wheel of torch 1.10.0 for JetPack 4.4-4.6 / Python 3.6 (from the "PyTorch for Jetson" thread).
TORCH_WHEEL_URL="${TORCH_WHEEL_URL:-https://nvidia.box.com/shared/static/fjtbno0vpo676a25cgvuqc1wty0fkkg6.whl}"
TORCH_WHEEL="torch-1.10.0-cp36-cp36m-linux_aarch64.whl"
TORCHVISION_TAG="v0.11.1"   # the torchvision release built for torch 1.10
CLOCKS=0
TORCH=1
for arg in "$@"; do
  case "$arg" in
    --clocks) CLOCKS=1 ;;
    --no-torch) TORCH=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option $arg (use --clocks, --no-torch)" >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }

say "board"
cat /proc/device-tree/model 2>/dev/null | tr -d '\0'; echo
if ! grep -q "^# R32" /etc/nv_tegra_release 2>/dev/null; then
  echo "warning: not L4T R32 (JetPack 4): $(head -1 /etc/nv_tegra_release 2>/dev/null || echo 'no /etc/nv_tegra_release')"
  echo "         the torch wheel below is for JetPack 4.6 / Python 3.6 only; use --no-torch and NVIDIA's wheel for your JetPack"
fi

say "system packages"
sudo apt-get update
sudo apt-get install -y python3-pip python3-dev libopenblas-base libopenmpi-dev libomp-dev \
  libjpeg-dev zlib1g-dev git

say "python packages (numpy 1.19.x is the last series for Python 3.6)"
python3 -m pip install --user --upgrade "pip<22"
python3 -m pip install --user "Cython<3" "numpy>=1.19,<1.20" pyserial

if [ "$TORCH" = 1 ]; then
  if python3 -c "import torch" 2>/dev/null; then
    echo "torch $(python3 -c 'import torch; print(torch.__version__)') already installed"
  else
    say "torch 1.10.0 (NVIDIA wheel)"
    tmp="$(mktemp -d)"
    wget -q --show-progress "$TORCH_WHEEL_URL" -O "$tmp/$TORCH_WHEEL"
    python3 -m pip install --user "$tmp/$TORCH_WHEEL"
    rm -rf "$tmp"
  fi
  if python3 -c "import torchvision" 2>/dev/null; then
    echo "torchvision $(python3 -c 'import torchvision; print(torchvision.__version__)') already installed"
  else
    say "torchvision $TORCHVISION_TAG from source (about 30-60 minutes on a TX2)"
    tmp="$(mktemp -d)"
    git clone --depth 1 --branch "$TORCHVISION_TAG" https://github.com/pytorch/vision "$tmp/vision"
    (cd "$tmp/vision" && BUILD_VERSION="${TORCHVISION_TAG#v}" python3 setup.py install --user)
    rm -rf "$tmp"
  fi
  python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.cuda.is_available())"
fi

say "jetson-stats (jtop) and its service"
if ! command -v jtop >/dev/null; then
  sudo -H python3 -m pip install -U jetson-stats
fi
getent group jtop >/dev/null && sudo usermod -aG jtop "$USER" || true

say "serial power meter: udev rule and dialout group"
sudo install -m 0644 "$HERE/99-ebt-power-meter.rules" /etc/udev/rules.d/99-ebt-power-meter.rules
sudo udevadm control --reload-rules
sudo udevadm trigger --subsystem-match=tty
sudo usermod -aG dialout "$USER"

if [ "$CLOCKS" = 1 ]; then
  say "power mode: MAXN (nvpmodel -m 0) and clocks pinned (jetson_clocks)"
  [ -f "$HOME/.ebt-jetson-clocks" ] || sudo jetson_clocks --store "$HOME/.ebt-jetson-clocks"
  sudo nvpmodel -m 0
  sudo jetson_clocks
  echo "restore later with: sudo jetson_clocks --restore $HOME/.ebt-jetson-clocks"
fi

say "check"
nvpmodel -q 2>/dev/null || true
(cd "$REPO" && python3 - <<'PY'
import json
from hw.platform import device_info
from hw.meters import AUTO_ORDER, probe
print(json.dumps(device_info(), indent=1))
for kind in AUTO_ORDER:
    ok, why = probe(kind)
    print("%-11s %-3s %s" % (kind, "ok" if ok else "no", why))
PY
)
echo
echo "done. Log out and back in (groups jtop, dialout). Power mode and clocks reset at reboot: rerun with --clocks."
