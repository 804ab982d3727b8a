"""Build the wheel, install it alone into a fresh virtualenv and use it from a folder outside the
checkout, as a new user would (run by `make smoke`, part of `make test`).

First the core install alone (`pip install ratepad`): its size (the sum of site-packages less
the fresh venv's own, at most CORE_LIMIT_MB), and that every command whose extra is missing says
which to install in one line (exit status 2). Each extra's size is printed (what it adds to the
core, from the installed files of this environment's distributions, so that measuring costs no
install), and the `flash` and `testing` extras are installed for the checks. Then: `python -m
ratepad --version`, `ratepad sim` on a scenario (on CPython, and on the MicroPython VM where the
npm package is pointed at, or one line saying it is missing), `ratepad demo --seconds 3`,
`ratepad fw build` (the `flash` extra), `ratepad doctor`, a hardware command that finds no
keypad, the pytest guide's example without the npm package (its MicroPython test skipped with
the reason), an unrelated pytest file (the plugin must not break other projects' tests), and the
quick starts' marked steps (``docs_walk.py``). Exit status 0 when every check passed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import docs_walk

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "docs" / "guide" / "pytest.md"  # the pytest example
CORE_LIMIT_MB = 30.0
EXTRAS = ("hid", "usb", "flash", "testing", "bridge", "report", "server")
CHECKED_EXTRAS = "flash,testing"
"""Installed for the checks: fw build and the pytest plugin."""


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def fails(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """The one stderr line of ``cmd``, which must exit with status 2, without a traceback."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    if done.returncode != 2 or len(lines) != 1 or "Traceback" in done.stderr:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
    return lines[0]


def site_packages_mb(venv: Path) -> float:
    """The size of the files in the venv's site-packages, in MB (10**6 bytes)."""
    (site,) = venv.glob("lib/python3*/site-packages")
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) / 1e6


def extra_sizes_mb() -> dict[str, float]:
    """Per extra, the MB its distributions add to the core's, from the files this environment
    (``make setup``: every extra) has installed for them."""
    from importlib import metadata

    from packaging.requirements import Requirement

    def closure(requirements: list[str], extra: str = "") -> set[str]:
        seen: set[str] = set()
        todo = list(requirements)
        while todo:
            req = Requirement(todo.pop())
            env = {"extra": extra} if extra else {"extra": ""}
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = req.name.lower().replace("_", "-")
            if name in seen:
                continue
            seen.add(name)
            todo += [r for r in metadata.requires(name) or [] if "extra ==" not in r]
        return seen

    def size(names: set[str]) -> float:
        total = 0
        for name in names:
            for f in metadata.distribution(name).files or []:
                total += f.size or 0
        return total / 1e6

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = closure(project["dependencies"])
    extras = project["optional-dependencies"]
    return {e: size(closure(extras[e]) - core) for e in EXTRAS}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ratepad-smoke-"))
    try:
        return _main(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _main(work: Path) -> int:
    dist, venv, user = work / "dist", work / "venv", work / "user"
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # No RATEPAD_NODE_MODULES: as a new user, the MicroPython VM's npm package is not there.
    env.pop("RATEPAD_NODE_MODULES", None)
    with_vm = {**env, "RATEPAD_NODE_MODULES": str(ROOT / "node_modules")}
    t0 = time.monotonic()
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(ROOT)],
        cwd=work, env=env,
    )  # fmt: skip
    wheel = next(dist.glob("ratepad-*.whl"))
    run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=env)
    py = str(venv / "bin" / "python")
    bare = site_packages_mb(venv)
    run([py, "-m", "pip", "install", "--quiet", str(wheel)], cwd=work, env=env)
    core = site_packages_mb(venv) - bare
    print(f"smoke: built and installed {wheel.name} in {time.monotonic() - t0:.0f} s")
    print(f"smoke: core install {core:.1f} MB (limit {CORE_LIMIT_MB:.0f} MB)")
    failed = 0
    if core > CORE_LIMIT_MB:
        failed += 1
        print(f"smoke: FAIL the core install is {core:.1f} MB, more than {CORE_LIMIT_MB:.0f} MB")
    failed += core_only_checks(py, user, env)
    for extra, mb in extra_sizes_mb().items():
        print(f"smoke: extra [{extra}] adds {mb:.1f} MB to the core")
    run([py, "-m", "pip", "install", "--quiet", f"{wheel}[{CHECKED_EXTRAS}]"], cwd=work, env=env)

    scenario = user / "counter.json"
    shutil.copy(ROOT / "tests" / "scenarios" / "contract_example.json", scenario)
    match = re.search(r"<!-- pytest-example -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "the pytest guide lost its example"
    (user / "test_counter.py").write_text(match.group(1), encoding="utf-8")
    other = work / "other_project"
    other.mkdir()
    (other / "test_other.py").write_text("def test_unrelated():\n    assert 1 + 1 == 2\n")

    def version() -> None:
        out = run([py, "-m", "ratepad", "--version"], user, env)
        assert out.startswith("ratepad "), out

    def imported_from_the_venv() -> None:
        out = run([py, "-c", "import ratepad; print(ratepad.__file__)"], user, env)
        assert out.strip().startswith(str(venv)), out

    def sim() -> None:
        out = run([py, "-m", "ratepad", "sim", str(scenario), "--json"], user, env)
        assert '"device": "K1"' in out, out

    def sim_micropython() -> None:
        cmd = [py, "-m", "ratepad", "sim", str(scenario), "--json", "--engine", "micropython"]
        out = run(cmd, user, with_vm)
        assert '"device": "K1"' in out, out
        line = fails(cmd, user, env)  # no npm package here
        assert "npm install @micropython/micropython-webassembly-pyscript" in line, line

    def demo() -> None:
        out = run([str(venv / "bin" / "ratepad"), "demo", "--seconds", "3"], user, env)
        assert "index" in out, out

    def fw_build() -> None:
        run([py, "-m", "ratepad", "fw", "build", "--out", str(user / "fw")], user, env)
        assert (user / "fw" / "board.json").is_file()

    def doctor() -> None:
        done = subprocess.run(
            [py, "-m", "ratepad", "doctor"], cwd=user, env=env, capture_output=True, text=True
        )
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr

    def no_keypad() -> None:
        done = subprocess.run(
            [py, "-m", "ratepad", "monitor", "--seconds", "1"],
            cwd=user, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and "no keypad" in lines[0], done.stderr

    def sdist_builds_the_wheel() -> None:
        sdists = work / "sdist"
        run(
            [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(sdists),
             str(ROOT)],
            cwd=work, env=env,
        )  # fmt: skip
        sdist = next(sdists.glob("ratepad-*.tar.gz"))
        shutil.unpack_archive(sdist, sdists)
        tree = next(p for p in sdists.iterdir() if p.is_dir())
        needed_files = ("tests/conftest.py", "protocol/vectors", "firmware/rpfw", "Makefile")
        for needed in needed_files:
            assert (tree / needed).exists(), f"the sdist lacks {needed}"
        run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--wheel-dir", str(sdists / "wheel"), str(tree)],
            cwd=work, env=env,
        )  # fmt: skip
        assert next((sdists / "wheel").glob("ratepad-*.whl"))

    def readme_pytest_example() -> None:
        out = run(
            [py, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_counter.py"],
            user, env,
        )  # fmt: skip
        assert "2 passed, 1 skipped" in out and "micropython engine cannot run" in out, out

    def unrelated_pytest_file() -> None:
        out = run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider"], other, env)
        assert "1 passed" in out, out

    def quick_starts() -> None:
        failures = docs_walk.walk(work, env, wheel)
        assert not failures, "\n".join(failures)

    checks: list[Callable[[], None]] = [
        version, imported_from_the_venv, sim, sim_micropython, demo, fw_build, doctor, no_keypad,
        sdist_builds_the_wheel, readme_pytest_example, unrelated_pytest_file, quick_starts,
    ]  # fmt: skip
    for check in checks:
        t = time.monotonic()
        try:
            check()
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            failed += 1
            print(f"smoke: FAIL {check.__name__}: {exc}")
        else:
            print(f"smoke: ok   {check.__name__} ({time.monotonic() - t:.1f} s)")
    print(f"smoke: {failed} failed")
    return 1 if failed else 0


def core_only_checks(py: str, user: Path, env: dict[str, str]) -> int:
    """What the core install does without extras; the number of failed checks."""
    ratepad = [py, "-m", "ratepad"]
    needs = {
        "server": [*ratepad, "server", "init"],
        "bridge": [*ratepad, "sandbox", "--seconds", "1"],
        "flash": [*ratepad, "fw", "build", "--out", str(user / "never")],
        "hid": [*ratepad, "monitor", "hid://", "--seconds", "1"],
    }
    failed = 0
    for extra, cmd in needs.items():
        try:
            line = fails(cmd, user, env)
            assert f"pip install 'ratepad[{extra}]'" in line, line
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            failed += 1
            print(f"smoke: FAIL core install, {' '.join(cmd[3:])}: {exc}")
        else:
            print(f"smoke: ok   core install, {' '.join(cmd[3:])}: {line}")
    done = subprocess.run([*ratepad, "list"], cwd=user, env=env, capture_output=True, text=True)
    if done.returncode != 0 or "hid:// not installed" not in done.stderr:
        failed += 1
        print(f"smoke: FAIL core install, list: {done.returncode} {done.stderr}")
    else:
        print(f"smoke: ok   core install, list: {done.stderr.strip()}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
