"""Checks before a run: `ebt doctor` runs them all, `ebt run` the fast ones before anything is started.

Each check is a `Check(name, ok, detail, fix)`; `fix` names the command or the set-up step of
hw/jetson/README.md that repairs it. A failed `blocking` check means a run cannot work (no torch, no
dataset, no disk, a meter that does not open); the others are warnings (clocks not locked, a clock
offset). The target side is one call, `python3 -m experiments.probe` from the shipped code (Python 3.6 there),
which reports what it finds as JSON and creates nothing.

A target type can add its own checks (a scheduler's partition, `sbatch`): a method `checks() -> list[Check]`
on the target is called by `ebt doctor` after the common ones.
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from experiments.datasets import DATASETS
from hw.meters import NONE

from .errors import UsageError
from .targets import Target

log = logging.getLogger(__name__)

SETUP = "hw/jetson/README.md"
STEP_INSTALL = f"{SETUP} step 1 (`bash hw/jetson/setup.sh`)"
STEP_CLOCKS = f"{SETUP} step 2 (`bash hw/jetson/setup.sh --clocks`)"
STEP_METER = f"{SETUP} step 3 (`python3 -m hw meters` on the board lists what works)"
STEP_SERIAL = f"{SETUP} step 4 (udev rule, dialout group)"
PROBE_TIMEOUT_S = 60.0  # importing torch on a TX2 takes several seconds
MAX_WATTS = 5000.0      # more than any board or workstation this suite meters: a misread unit
CLOCK_WARN_S = 0.5


class PreflightFailed(UsageError):
    """A check a run needs failed: nothing was started."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = True

    def problem(self) -> str:
        return f"{self.name}: {self.detail}" + (f"; fix: {self.fix}" if self.fix else "")

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        return ("FAIL  " if self.blocking else "warn  ") + self.problem()


@dataclass
class Needs:
    """What the runs of a config need on the target."""

    datasets: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, data_root, download)
    device_meters: list[str] = field(default_factory=list)
    laptop_meters: list[str] = field(default_factory=list)
    cuda: bool = False
    need_mb: float = 0.0
    boards: list[tuple[Optional[str], Optional[str]]] = field(default_factory=list)  # (power_mode, clocks) to set


def checkpoint_mb(spec: dict[str, Any]) -> float:
    """Upper estimate of one run's checkpoint folder: the dense model's fp32 weights times (last.pt with
    its momentum buffer, the initial weights, one ticket per tracked ratio, the pruned model)."""
    from experiments.models import build, count_params, default_cfg
    from experiments.spec import num_classes
    model = build(spec["arch"], spec["depth"], num_classes(spec),
                  cfg=default_cfg(spec["arch"], spec["depth"], spec["width"]))
    copies = 4 + len(spec.get("eb_ratios") or [])
    return count_params(model) * 4 * copies / 1e6


def needs_of(specs: list[dict[str, Any]], meter: Optional[str] = None, where: str = "device") -> Needs:
    """Needs of `specs` (their meters); without specs, only `meter` (sampled `where`)."""
    needs = Needs()
    if meter and meter != NONE:
        (needs.laptop_meters if where == "laptop" else needs.device_meters).append(meter)
    for spec in specs:
        data = (spec["dataset"], spec["data_root"], bool(spec["download"]))
        if data not in needs.datasets:
            needs.datasets.append(data)
        meters = [spec["meter"]] + list(spec.get("meters_extra") or [])
        wheres = [spec.get("meter_where")] + list(spec.get("meters_extra_where") or [])
        for meter, where in zip(meters, wheres):
            kind = needs.laptop_meters if where == "laptop" else needs.device_meters
            if meter != NONE and meter not in kind:
                kind.append(meter)
        needs.cuda = needs.cuda or spec["device"] == "cuda"
        board = (spec.get("power_mode"), spec.get("clocks"))
        if board != (None, None) and board not in needs.boards:
            needs.boards.append(board)
        needs.need_mb += checkpoint_mb(spec)
    return needs


def python_of(target: Target) -> str:
    address = getattr(target, "address", None)
    return address.python if address is not None else sys.executable


def _with_python(target: Target) -> str:
    """The target's URL with `python=` set to a placeholder path (its other options kept)."""
    parts = urlsplit(target.url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "python"] + [("python", "/path/to/python3")]
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


def torch_fix(target: Target) -> str:
    if getattr(target, "address", None) is None:
        return f"install torch into this environment ({sys.executable} -m pip install torch)"
    return (f"install NVIDIA's torch wheel for the board's JetPack ({STEP_INSTALL}), or point the target's "
            f"?python= at an interpreter that has torch: {_with_python(target)}")


def run_probe(target: Target, code_dir: str, needs: Needs, idle_s: float = 0.0,
              run_root: Optional[str] = None, restore: bool = False) -> tuple[Optional[dict], Optional[Check]]:
    """(the probe's report, None) or (None, a failed `python` check saying why it did not run). `restore`:
    the probe also puts back what a killed run left changed on the board (`ebt doctor`)."""
    argv = ["experiments.probe"]
    for power_mode, clocks in needs.boards:
        argv += ["--board", "-" if power_mode is None else power_mode, clocks or "-"]
    if restore and run_root:
        from experiments.paths import boards_dir
        argv += ["--boards-dir", boards_dir(run_root.rsplit("/", 1)[0])]  # beside runs/
    for name, root, download in needs.datasets:
        argv += ["--dataset", name, root, "1" if download else "0"]
    for meter in needs.device_meters:
        argv += ["--meter", meter]
    if run_root:
        argv += ["--run-root", run_root]
    if idle_s:
        argv += ["--idle-seconds", str(idle_s)]
    rc, out, err = target.run_module(code_dir, argv, timeout=PROBE_TIMEOUT_S + idle_s)
    lines = out.strip().splitlines()
    if rc == 0 and lines:
        try:
            return json.loads(lines[-1]), None
        except ValueError:
            pass
    why = (err.strip().splitlines() or ["no output"])[-1]
    if rc == 127:  # the shell found no such interpreter
        fix = f"point the target's ?python= at an interpreter that exists: {_with_python(target)}"
    else:
        fix = f"run `cd {code_dir} && {python_of(target)} -m experiments.probe` there to see the whole error"
    return None, Check("python", False, f"{python_of(target)} on {target.url} could not run `python -m "
                       f"experiments.probe` (exit {rc}): {why}", fix)


def python_checks(report: dict, needs: Needs, target: Target) -> list[Check]:
    python = python_of(target)
    checks = [Check("python", True, f"{report['python']} ({report['executable']})")]
    torch = report["torch"]
    if "error" in torch:
        return checks + [Check("torch", False, f"{python} on {target.url} cannot import torch "
                               f"({torch['error']})", torch_fix(target))]
    gpu = f"CUDA on {torch['device']}" if torch["cuda"] else "no CUDA (runs on the CPU)"
    checks.append(Check("torch", True, f"{torch['version']}, {gpu}"))
    if needs.cuda and not torch["cuda"]:
        checks.append(Check("cuda", False, "a spec asks for device: cuda but torch sees no GPU",
                            f"install the CUDA build of torch for this JetPack ({STEP_INSTALL}) or set "
                            "device: auto"))
    packages = report["packages"]
    checks.append(Check("numpy", packages["numpy"] is not None, packages["numpy"] or "not installed",
                        f"{python} -m pip install 'numpy<1.20' on Python 3.6 ({STEP_INSTALL})"))
    if any(not DATASETS[name].bundled for name, _, _ in needs.datasets):
        checks.append(Check("torchvision", packages["torchvision"] is not None,
                            packages["torchvision"] or "not installed (CIFAR and ImageNet need it)",
                            f"build torchvision for this torch ({STEP_INSTALL})"))
    checks.append(Check("pyyaml", True, (packages["yaml"] or "not installed") + " (not needed on the device: "
                        "specs travel as JSON)"))
    return checks


def data_checks(report: dict, needs: Needs) -> list[Check]:
    checks = [Check(f"dataset {name}", state["ok"], state["detail"],
                    "copy it there in torchvision's layout, or set `download: true` (CIFAR) in the config")
              for (name, _, _), state in zip(needs.datasets, report["datasets"])]
    disk = report.get("disk")
    if disk:
        checks.append(Check("run root", disk["writable"], f"{disk['path']} "
                            + ("writable" if disk["writable"] else f"not writable ({disk['existing']})"),
                            "point ?root= at a folder you own, or fix its owner (sudo chown)"))
        need = needs.need_mb + 100  # room for logs and power traces
        checks.append(Check("free disk", disk["free_mb"] >= need, f"{disk['free_mb']:.0f} MB free at "
                            f"{disk['existing']}, checkpoints need up to {need:.0f} MB",
                            "free space there or choose another ?root="))
    return checks


def meter_fix(spec: str) -> str:
    from hw.meters import is_serial, parse_spec
    try:
        kind = parse_spec(spec)[0]
    except ValueError:
        return "use a spec `ebt meters list` shows"
    if is_serial(spec):
        return f"plug the meter in and name its port (ls /dev/serial/by-id/); {STEP_SERIAL}"
    if kind == "jtop":
        return f"sudo jtop --install-service, then log in again (group jtop); {STEP_METER}"
    return STEP_METER


def meter_check(state: dict, where: str) -> Check:
    spec = state["spec"]
    name = f"meter {spec} ({where})"
    if state.get("none"):  # only `auto` gets here (`none` is never probed): energy asked for, none found
        return Check(name, False, f"`{spec}` found no meter that works on this target: every run's energy "
                     "would be null", f"make one work ({STEP_METER}; `ebt meters` on a laptop), name one "
                     "with --meter SPEC, or run with --meter none to go without energy knowingly")
    if "error" in state:
        return Check(name, False, state["error"], meter_fix(spec))
    watts, info = state["watts"], state.get("info") or {}
    scope = info.get("scope") or "unknown scope"
    detail = f"reads {watts:.2f} W ({scope})"
    if not 0.0 < watts < MAX_WATTS:
        return Check(name, False, detail + ": not a plausible power", meter_fix(spec), blocking=False)
    return Check(name, True, detail)


def laptop_meter_checks(needs: Needs) -> list[Check]:
    """Serial meters on the laptop: opened and read here, closed again."""
    from hw.probe import meter_state
    return [meter_check(meter_state(spec, 0.0)[0], "laptop") for spec in needs.laptop_meters]


def device_meter_checks(report: dict, needs: Needs) -> list[Check]:
    checks = [meter_check(state, "device") for state in report["meters"]]
    if report.get("idle"):
        idle = report["idle"]
        std = idle.get("idle_std_w") or 0.0
        checks.append(Check("idle baseline", True, f"{idle['idle_w']:.2f} W ± {std:.2f} ({idle['samples']} "
                            f"samples): --set meter_idle_w={idle['idle_w']:.3f} --set meter_idle_std_w={std:.3f}"))
    return checks


def jetson_checks(report: dict) -> list[Check]:
    """Power mode and clocks, on a Jetson only (L4T found)."""
    info = report["platform"]
    if not info.get("l4t"):
        return []
    board = f"{info.get('board')}, L4T {info['l4t']}, JetPack {info.get('jetpack') or 'unknown'}"
    mode = info.get("power_mode")
    checks = [Check("power mode", mode is not None, f"{mode} on {board}" if mode else f"unknown on {board}",
                    f"sudo nvpmodel -m N, N the board's MAXN id ({STEP_CLOCKS})", blocking=False)]
    clocks = report["clocks"]
    locked = [v for v in (clocks["cpu_locked"], clocks["gpu_locked"]) if v is not None]
    checks.append(Check("clocks locked", bool(locked) and all(locked),
                        "CPU %s, GPU %s" % tuple({True: "locked", False: "scaling", None: "unknown"}[v]
                                                  for v in (clocks["cpu_locked"], clocks["gpu_locked"])),
                        f"sudo jetson_clocks ({STEP_CLOCKS})", blocking=False))
    return checks


def clock_check(target: Target) -> Check:
    offset = target.clock_offset()
    ok = abs(offset.offset_s) <= CLOCK_WARN_S
    return Check("clock offset", ok, f"{offset.offset_s:+.3f} s ± {offset.uncertainty_s:.3f} s to the laptop",
                 "sync both clocks (sudo timedatectl set-ntp true on each)", blocking=False)


SSH_STEPS = ("ssh reachable", "host key known", "key login", "sftp subsystem")


def ssh_checks(target: Target) -> list[Check]:
    """Connect once; the first step that fails names its fix, the steps after it are not reached."""
    import paramiko

    from .targets.ssh import HostKeyError, SFTPUnavailable
    target.reconnect_give_up_s = 5.0  # a doctor answers in seconds, it does not wait out a reboot
    try:
        target.root  # opens the link: TCP, host key, login, SFTP, in that order
        return [Check(step, True, "yes") for step in SSH_STEPS]
    except HostKeyError as exc:
        failed, fix, why = 1, "", exc  # the message says how (ssh-keygen -lf, --trust-new-host, -R)
    except paramiko.AuthenticationException as exc:
        failed, why = 2, exc
        fix = (f"install your key on the device: {copy_id_command(target.address)} (or name it with "
               "IdentityFile in ~/.ssh/config)")
    except SFTPUnavailable as exc:
        failed, fix, why = 3, "", exc  # the message names the sshd_config line
    except (OSError, paramiko.SSHException) as exc:
        failed, why = 0, exc
        fix = "check the address and that the device is on and runs sshd (`ssh HOST` must work)"
    done = [Check(step, True, "yes") for step in SSH_STEPS[:failed]]
    skipped = [Check(step, False, "not reached", blocking=False) for step in SSH_STEPS[failed + 1:]]
    reason = (str(why) or type(why).__name__).splitlines()[0]
    return done + [Check(SSH_STEPS[failed], False, reason, fix)] + skipped


def copy_id_command(address: Any) -> str:
    """`ssh-copy-id` for the target's address, with its user and port (the URL's, as the user typed it)."""
    port = f"-p {address.port} " if address.port else ""
    user = f"{address.user}@" if address.user else ""
    return f"ssh-copy-id {port}{user}{address.host}"


def _run_root(target: Target) -> str:
    return target.run_dir("probe").rsplit("/", 1)[0]


def board_checks(report: dict) -> list[Check]:
    """Whether each power mode / clocks setting the runs ask for can be set (hw.board), and what a killed
    run had left changed on the board (restored by the probe under `ebt doctor`)."""
    checks = [Check(f"board power_mode={b['power_mode']} clocks={b['clocks']}", b["ok"], b["detail"])
              for b in report.get("board") or []]
    restored = report.get("board_restored")
    if restored:
        checks.append(Check("board restored", restored["error"] is None, f"the interrupted run "
                            f"{restored['owner']} had changed it: now {restored['mode']}"
                            + (f" ({restored['error']})" if restored["error"] else ""),
                            "sudo nvpmodel -m N with the mode the board should be in"))
    return checks


def target_checks(target: Target, needs: Needs, code_root: Path, idle_s: float = 0.0,
                  restore: bool = False) -> tuple[list[Check], dict]:
    """Ship the code (once per version) and probe the target: the Python, data, disk, meter and board checks."""
    code_dir = target.prepare(code_root)
    report, failed = run_probe(target, code_dir, needs, idle_s, run_root=_run_root(target), restore=restore)
    if report is None:
        return [failed], {}
    checks = python_checks(report, needs, target) + board_checks(report)
    if report["torch"].get("error") is None:
        checks += data_checks(report, needs) + device_meter_checks(report, needs)
    return checks, report


def doctor(target: Target, needs: Needs, code_root: Path, idle_s: float = 0.0,
           emit: Callable[[Check], None] = lambda c: None) -> list[Check]:
    """Every check, each passed to `emit` as soon as it is known."""
    checks: list[Check] = []

    def add(new: list[Check]) -> bool:
        checks.extend(new)
        for check in new:
            emit(check)
        return all(c.ok or not c.blocking for c in new)

    if getattr(target, "address", None) is not None and not add(ssh_checks(target)):
        return checks
    add(laptop_meter_checks(needs))
    found, report = target_checks(target, needs, code_root, idle_s, restore=True)
    add(found)
    if report:  # the target's Python runs: its platform and clock can be read
        add(jetson_checks(report) + [clock_check(target)])
    extra = getattr(target, "checks", None)
    if callable(extra):
        add(extra())
    return checks


def before_run(target: Target, specs: list[dict[str, Any]], code_root: Path) -> None:
    """The fast checks of `ebt doctor` (Python, torch, dataset, disk, meters): PreflightFailed, one line,
    before any run folder, record or meter session exists."""
    needs = needs_of(specs)
    checks = laptop_meter_checks(needs)
    if all(c.ok or not c.blocking for c in checks):
        checks += target_checks(target, needs, code_root)[0]
    failed = [c for c in checks if not c.ok and c.blocking]
    if failed:
        raise PreflightFailed("preflight on %s: %s (details: ebt doctor --target %s CONFIG)"
                              % (target.url, " | ".join(c.problem() for c in failed), target.url))
    for check in checks:
        if not check.ok:
            log.warning("%s", check.line())
    log.info("preflight on %s: %d checks ok", target.url, len(checks))
