"""Stand-ins for what hw/jetson/setup.sh calls on a Jetson (sudo, apt-get, dpkg, wget, pip through python3,
nvpmodel, jetson_clocks, systemctl, jtop, udevadm, usermod, getent, id, hostname), placed first on PATH.

Each call is appended to `calls.log` in the state folder ($STANDIN_STATE). They keep the state a board
would: apt packages installed, pip packages (a small `torch`/`numpy` package written to a site folder that
python3 puts on its path, so the script's own Python code runs for real against it), the jtop service.
What the board is like comes from the environment:

    STANDIN_PYTHON   the version python3 reports ("3.6")
    STANDIN_SM       the GPU's compute capability (53 Nano, 72 Xavier, 87 Orin, 110 Thor)
    STANDIN_FAIL     ";"-separated pieces of a command line: a call containing one fails
    STANDIN_REBOOT   ","-separated power modes whose `nvpmodel -m` asks to reboot
    STANDIN_NO_USER  set: `id -un` fails

The torch a source gives is modelled on what users report: which GPUs it has kernels for and which shared
libraries it loads (see /work/shared/research/jetson-setup-2026-12.md for the sources).
"""
import os
import sys
from pathlib import Path

NAMES = ("python3", "sudo", "apt-get", "dpkg", "wget", "nvpmodel", "jetson_clocks", "systemctl", "udevadm",
         "usermod", "getent", "id", "hostname")

# (piece of the source URL, version, GPUs with kernels, {library: apt package that provides it})
TORCH_SOURCES = [
    ("nvidia.box.com", "1.10.0", [53, 62, 72], {}),
    ("jp/v511", "2.0.0+nv23.05", [72, 87], {}),
    ("jp/v60", "2.4.0a0+07cecf4168.nv24.05", [87], {}),
    ("jp6/cu126", "2.8.0", [87], {"libcudss.so.0": "cudss"}),
    ("sbsa/cu130", "2.9.0", [110, 121], {"libcudart.so.13": "nvidia-jetpack", "libcudnn.so.9": "libcudnn9-cuda-13",
                                         "libnvpl_lapack_lp64_gomp.so.0": "nvpl", "libcudss.so.0": "cudss"}),
]

FAKE_TORCH = '''
import os
_STATE = {state!r}
_listed = os.path.join(_STATE, "apt.txt")
_apt = open(_listed).read().split() if os.path.exists(_listed) else []
for _lib, _pkg in sorted({libs!r}.items()):
    if _pkg not in _apt and not (_pkg == "nvidia-jetpack" and os.path.isdir({cuda!r})):
        raise ImportError("%s: cannot open shared object file: No such file or directory" % _lib)
__version__ = {version!r}


def _kernel():
    if {sm} not in {archs!r}:
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")


class Tensor:
    def sum(self):
        _kernel()
        return Tensor()

    def backward(self):
        _kernel()


def randn(*shape, **kw):
    if kw.get("device") == "cuda":
        _kernel()
    return Tensor()


class cuda:
    is_available = staticmethod(lambda: True)
    synchronize = staticmethod(lambda: None)
    get_device_name = staticmethod(lambda i=0: {name!r})


class _Conv:
    def cuda(self):
        return self

    def __call__(self, x):
        _kernel()
        return Tensor()


class nn:
    Conv2d = staticmethod(lambda *a, **k: _Conv())
'''

FAKE_NUMPY = '''
import os, sys
__version__ = {version!r}
if __version__ == "1.19.5" and os.environ.get("OPENBLAS_CORETYPE") != "ARMV8":
    sys.stderr.write("Illegal instruction (core dumped)\\n")
    sys.stderr.flush()
    os._exit(132)
'''


def state() -> Path:
    return Path(os.environ["STANDIN_STATE"])


def log(line: str) -> None:
    with open(state() / "calls.log", "a") as f:
        f.write(line + "\n")


def fail_if_asked(line: str) -> None:
    for piece in filter(None, os.environ.get("STANDIN_FAIL", "").split(";")):
        if piece in line:
            sys.stderr.write("stand-in failure: %s\n" % line)
            sys.exit(1)


def listed(name: str) -> list:
    path = state() / name
    return path.read_text().split() if path.exists() else []


def add(name: str, *words: str) -> None:
    with open(state() / name, "a") as f:
        f.write("".join(w + "\n" for w in words))


def board_root() -> Path:
    return Path(os.environ.get("EBT_JETSON_ROOT", "/"))


def install_torch(url: str) -> None:
    version, archs, libs = "2.5.0+custom", [int(os.environ["STANDIN_SM"])], {}
    for piece, v, a, needs in TORCH_SOURCES:
        if piece in url:
            version, archs, libs = v, a, needs
    pkg = state() / "site" / "torch"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(FAKE_TORCH.format(
        state=str(state()), libs=libs, cuda=str(board_root() / "usr" / "local" / "cuda"), version=version,
        sm=int(os.environ["STANDIN_SM"]), archs=archs, name="sm_%s GPU" % os.environ["STANDIN_SM"]))


def numpy_version(spec: str) -> str:
    """What pip resolves a numpy requirement to on an aarch64 board."""
    if spec.startswith("numpy=="):
        return spec.split("==")[1]
    return {"numpy>=1.19,<1.20": "1.19.5", "numpy<2": "1.26.4"}.get(spec, "2.1.3")


def pip(args: list) -> int:
    words = [a for a in args if not a.startswith("-")]
    index = args[args.index("--index-url") + 1] if "--index-url" in args else ""
    for word in words:
        if word == index:
            continue
        if word.endswith(".whl"):
            install_torch(Path(word).read_text())
        elif word == "torch":
            install_torch(index)
        elif word.startswith("numpy"):
            pkg = state() / "site" / "numpy"
            pkg.mkdir(parents=True, exist_ok=True)
            (pkg / "__init__.py").write_text(FAKE_NUMPY.format(version=numpy_version(word)))
        elif word.startswith("jetson-stats"):
            bin_dir = Path(os.environ["STANDIN_BIN"])
            (bin_dir / "jtop").write_text(launcher("jtop"))
            (bin_dir / "jtop").chmod(0o755)
        add("pip.txt", word)
    print("Successfully installed %s" % " ".join(words))
    return 0


def python3(args: list) -> int:
    if args[:2] == ["-m", "pip"]:
        return pip(args[3:])
    if args[:2] == ["-m", "hw"]:
        print("meters: (stand-in) none")
        return 0
    if args[:1] == ["-c"] and "sys.version_info" in args[1]:
        print(os.environ["STANDIN_PYTHON"])
        return 0
    env = dict(os.environ, PYTHONPATH=str(state() / "site"))
    os.execve(sys.executable, [sys.executable, "-S"] + args, env)  # -S: not the laptop's own torch
    return 1


def nvpmodel(args: list) -> int:
    if args[:1] == ["-m"]:
        mode = args[1]
        if mode in os.environ.get("STANDIN_REBOOT", "").split(","):
            print("NVPM WARN: Reboot required for changing to this power mode: %s" % mode)
            print("NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:")
            sys.stdout.flush()
            answer = sys.stdin.readline().strip()
            if answer in ("YES", "yes"):
                log("REBOOTED")
                print("NVPM WARN: rebooting")
                return 0
            print("NVPM ERROR: bad input!")
            return 1
        add("nvpmodel.txt", mode)
        return 0
    modes = listed("nvpmodel.txt")
    print("NV Power Mode: MODE_%s\n%s" % ((modes or ["1"])[-1], (modes or ["1"])[-1]))
    return 0


# The simple stand-ins are shell scripts (a Python start per call made each set-up run take seconds).
PRELUDE = r"""#!/bin/bash
line="$(basename "$0") $*"
printf '%s\n' "$line" >> "$STANDIN_STATE/calls.log"
IFS=';' read -ra fails <<< "${STANDIN_FAIL:-}"
for piece in "${fails[@]}"; do
  if [ -n "$piece" ] && [[ "$line" == *"$piece"* ]]; then echo "stand-in failure: $line" >&2; exit 1; fi
done
root="${EBT_JETSON_ROOT:-/}"
"""
SHELL = {
    # never the real command as root: only other stand-ins, `install` (into the fake root) and bash
    "sudo": r"""while [ "${1:-}" != "${1#-}" ]; do shift; done
if [ -x "$STANDIN_BIN/$1" ] || [ "$1" = install ] || [ "$1" = bash ]; then exec "$@"; fi
echo "stand-in sudo: will not run the real $1" >&2; exit 1""",
    "apt-get": r"""if [ "$1" = install ]; then
  for a in "${@:2}"; do [ "${a#-}" = "$a" ] && echo "$a" >> "$STANDIN_STATE/apt.txt"; done
fi
exit 0""",
    "dpkg": r"""case "$*" in *cuda-keyring*)
  mkdir -p "$root/usr/share/keyrings"; echo key > "$root/usr/share/keyrings/cuda-archive-keyring.gpg"
  echo cuda-keyring >> "$STANDIN_STATE/apt.txt" ;; esac""",
    "wget": r"""url=""; out=""
while [ $# -gt 0 ]; do case "$1" in http*) url="$1" ;; -O) out="$2"; shift ;; esac; shift; done
printf '%s' "$url" > "$out"
""",
    "systemctl": r"""case "$*" in
  *is-active*) grep -qs jtop.service "$STANDIN_STATE/services.txt" || exit 3 ;;
  *enable*) grep -qs jetson-stats "$STANDIN_STATE/pip.txt" \
      || { echo "Failed to enable unit: Unit file jtop.service does not exist."; exit 1; }
    echo jtop.service >> "$STANDIN_STATE/services.txt" ;;
esac""",
    "jetson_clocks": r"""[ "${1:-}" = --store ] && echo "stored clocks" > "$2"
exit 0""",
    "getent": r"""[ "$*" = "group jtop" ] && grep -qs jtop.service "$STANDIN_STATE/services.txt" || exit 2""",
    "id": r"""[ -z "${STANDIN_NO_USER:-}" ] || { echo "id: cannot find name for user ID 1000" >&2; exit 1; }
echo nvidia""",
    "hostname": "echo jetson",
    "udevadm": "exit 0",
    "usermod": "exit 0",
}


HANDLERS = {"python3": python3, "nvpmodel": nvpmodel}


def main() -> int:
    name, args = sys.argv[1], sys.argv[2:]
    line = " ".join([name] + args)
    log(line)
    fail_if_asked(line)
    return HANDLERS.get(name, lambda args: 0)(args)


def launcher(name: str) -> str:
    return "#!/bin/sh\nexec '%s' -S -E '%s' %s \"$@\"\n" % (sys.executable, __file__, name)


def make_bin(bin_dir: Path) -> None:
    """One small executable per name in `bin_dir`: a shell script, or a call of this module with its name."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        path = bin_dir / name
        if name in SHELL:
            path.write_text(PRELUDE + SHELL[name] + "\n")
        else:
            path.write_text(launcher(name))
        path.chmod(0o755)


def calls(state_dir: Path) -> list:
    path = state_dir / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


if __name__ == "__main__":
    sys.exit(main())
