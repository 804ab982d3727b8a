"""Vendoring Apache ECharts into ``static/web/vendor/`` (no CDN: bank intranets are offline).

Reproducible: ``python -m ratepad_server.web.vendor`` runs ``npm pack echarts@VERSION`` (the
npm client, from its registry), checks the tarball's SHA-256 against ``SHA256``, and copies
``dist/echarts.min.js``, ``LICENSE`` and ``NOTICE`` (Apache-2.0) here. ``--check`` only compares
the committed file with the tarball's.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "6.1.0"
SHA256 = "681aff88cc1038c3fa941a3a53d1b177a52250b05335efc607d6105ae13be481"
HERE = Path(__file__).resolve().parent / "static" / "web" / "vendor"
FILES = {"package/dist/echarts.min.js": "echarts.min.js", "package/LICENSE": "echarts.LICENSE",
         "package/NOTICE": "echarts.NOTICE"}  # fmt: skip


def main(argv: list[str]) -> int:
    check = "--check" in argv
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"echarts@{VERSION}", "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        tgz = Path(tmp) / f"echarts-{VERSION}.tgz"
        digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
        if digest != SHA256:
            print(f"echarts-{VERSION}.tgz: SHA-256 {digest}, expected {SHA256}", file=sys.stderr)
            return 2
        with tarfile.open(tgz) as tar:
            for member, name in FILES.items():
                f = tar.extractfile(member)
                assert f is not None
                data = f.read()
                if check:
                    if (HERE / name).read_bytes() != data:
                        print(f"{HERE / name} differs from echarts {VERSION}", file=sys.stderr)
                        return 1
                else:
                    (HERE / name).write_bytes(data)
    print(f"echarts {VERSION}: {'up to date' if check else 'vendored'} in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
