"""`ratepad wireshark` and `ratepad completion`: fitting ratepad into the tools around it."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, UsageError

SHELLS = ("bash", "zsh", "tcsh")


def personal_plugins_dir() -> Path:
    """Wireshark's personal plugins folder, where it loads Lua dissectors from at start."""
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home())) / "Wireshark" / "plugins"
    return Path.home() / ".local" / "lib" / "wireshark" / "plugins"


def cmd_wireshark(args: argparse.Namespace) -> int:
    from .. import resources

    dissector = resources.resource(resources.DISSECTOR)
    if not dissector.is_file():
        raise UsageError(f"the dissector is missing from this install ({dissector})")
    if args.path:
        print(dissector)
        return EXIT_OK
    target = personal_plugins_dir() / dissector.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dissector, target)
    except OSError as exc:
        raise UsageError(f"cannot install the dissector in {target.parent}: {exc}") from None
    print(f"installed {target}: Wireshark and tshark started from now on decode ratepad frames")
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    # the whole command line's parser, which main.build_parser leaves on every Namespace
    sys.stdout.write(shtab.complete(args.root_parser, shell=args.shell))
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``wireshark`` and ``completion``."""
    p = sub.add_parser(
        "wireshark",
        help="where ratepad's Wireshark dissector is, or install it for this user",
        description="The Lua dissector shipped with ratepad decodes its frames in Wireshark and "
        "tshark. --path prints where it is (e.g. tshark -X lua_script:$(ratepad wireshark "
        f"--path) -r capture.pcapng); --install copies it into {personal_plugins_dir()}, "
        "Wireshark's personal plugins folder, which it loads at every start.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--path", action="store_true", help="print the dissector's path")
    what.add_argument(
        "--install",
        action="store_true",
        help="copy it into Wireshark's personal plugins folder (replaces an older copy)",
    )
    p.set_defaults(func=cmd_wireshark)

    p = sub.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh, tcsh)",
        description="Print a script that completes ratepad's commands and options in SHELL. "
        "bash: ratepad completion bash > ~/.local/share/bash-completion/completions/ratepad; "
        'zsh: ratepad completion zsh > "${fpath[1]}/_ratepad".',
    )
    p.add_argument("shell", choices=SHELLS, help="the shell: " + ", ".join(SHELLS))
    p.set_defaults(func=cmd_completion)
