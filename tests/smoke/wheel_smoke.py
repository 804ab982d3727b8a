"""Build the wheel, install it alone into a fresh virtualenv and use it from a folder outside the
checkout, as a new user would (run by `make smoke`, part of `make test`).

Checks: `python -m ratepad --version`, `ratepad sim` on a scenario, `ratepad demo --seconds 3`,
`ratepad fw build` (the `flash` extra), `ratepad doctor`, a hardware command that finds no keypad,
the pytest guide's example, an unrelated pytest file (the plugin must not break other
projects' tests), and the quick starts' marked steps (``docs_walk.py``). Exit status 0 when every
check passed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docs_walk

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "docs" / "guide" / "pytest.md"  # the pytest example


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


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
    # The MicroPython VM is an npm package the user installs beside their project.
    env["RATEPAD_NODE_MODULES"] = str(ROOT / "node_modules")
    t0 = time.monotonic()
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(ROOT)],
        cwd=work, env=env,
    )  # fmt: skip
    wheel = next(dist.glob("ratepad-*.whl"))
    run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=env)
    py = str(venv / "bin" / "python")
    run([py, "-m", "pip", "install", "--quiet", f"{wheel}[flash]", "pytest"], cwd=work, env=env)
    print(f"smoke: built and installed {wheel.name} in {time.monotonic() - t0:.0f} s")

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
        out = run(
            [py, "-m", "ratepad", "sim", str(scenario), "--json", "--engine", "micropython"],
            user, env,
        )  # fmt: skip
        assert '"device": "K1"' in out, out

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
            [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_counter.py"], user, env
        )
        assert "3 passed" in out, out

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
    failed = 0
    for check in checks:
        t = time.monotonic()
        try:
            check()
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            failed += 1
            print(f"smoke: FAIL {check.__name__}: {exc}")
        else:
            print(f"smoke: ok   {check.__name__} ({time.monotonic() - t:.1f} s)")
    print(f"smoke: {len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
