"""The window agent: stores every rating durably (SQLite), then ACKs it; a local HTTP bridge.

    from ratepad.agent import Agent, AgentConfig

    with Agent(AgentConfig(devices=("hid://",), db=Path("ratings.db"))) as agent:
        ...                                  # ratings flow into the store until stop()

See ``agent.py`` for the data flow, ``store.py`` for the durability rules and ``bridge/`` for
the HTTP API (``ratepad agent``, ``ratepad export`` and ``ratepad demo`` on the command line).
"""

from __future__ import annotations

from .agent import Agent, DeviceWorker, Writer
from .config import AgentConfig, ConfigError, load_config, parse_listen
from .levels import Level, LevelMapping
from .store import SCHEMA_VERSION, Store, StoredRating, StoreError

__all__ = [
    "SCHEMA_VERSION",
    "Agent",
    "AgentConfig",
    "ConfigError",
    "DeviceWorker",
    "Level",
    "LevelMapping",
    "Store",
    "StoreError",
    "StoredRating",
    "Writer",
    "load_config",
    "parse_listen",
]
