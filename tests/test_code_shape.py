"""The code's shape rules that nothing else would catch: short functions, and every run-folder file name
owned by experiments/paths.py alone (the power trace's by hw/trace.py, which paths.py re-exports)."""
import ast
from pathlib import Path

from experiments import paths

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("experiments", "hw", "harness", "analysis", "benchmarks")
MAX_FUNCTION_LINES = 50
# the run-folder names a module could be tempted to spell out
RUN_FILES = (paths.SPEC, paths.EVENTS, paths.POWER_CSV, paths.POWER_META, paths.MASKS, paths.RUNNER_LOG,
             paths.RUNNER_PID, paths.LOCK, paths.RUN_INFO, paths.LAPTOP_POWER, paths.LAPTOP_CLOCK,
             paths.RECORD)


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def test_no_function_is_longer_than_50_lines():
    long = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "functions over %d lines:\n%s" % (MAX_FUNCTION_LINES, "\n".join(long))


def test_run_folder_names_are_written_only_in_the_paths_module():
    owners = (ROOT / "experiments" / "paths.py", ROOT / "hw" / "trace.py")
    found = []
    for path, tree in _sources():
        if path in owners:
            continue
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr)
                      and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                # a path-like literal (prose such as help texts may name the files)
                hits = [name for name in RUN_FILES if name in node.value and not any(c.isspace() for c in node.value)]
                if hits:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, "run-folder names outside experiments/paths.py:\n" + "\n".join(found)
