"""The version of this ratepad (host toolkit and server): the one place it is written.

pyproject.toml reads it (``[tool.setuptools.dynamic]``), so the wheel's metadata, ``ratepad
--version`` and the server say the same. The firmware carries its own version
(``firmware/rpfw/core.py``); docs/compatibility.md says which go together.
"""

__version__ = "0.1.0"
