"""The window agent: stores every rating durably (SQLite), then ACKs it; a local HTTP bridge.

    from ratepad.agent import Agent, AgentConfig

    with Agent(AgentConfig(devices=("hid://",), db=Path("ratings.db"))) as agent:
        ...                                  # ratings flow into the store until stop()

See ``app.py`` for what runs together, ``agent.py`` for the data flow, ``store/`` for the
durability rules and ``bridge/`` for the HTTP API (``ratepad agent``, ``ratepad export`` and
``ratepad demo`` on the command line).
"""

from __future__ import annotations

from .agent import AgentCore, DeviceWorker
from .app import Agent
from .config import AgentConfig, ConfigError, load_config, parse_listen
from .levels import Level, LevelMapping
from .store import SCHEMA_VERSION, Store, StoredRating, StoreError
from .writer import Writer

__all__ = [
    "SCHEMA_VERSION",
    "Agent",
    "AgentConfig",
    "AgentCore",
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
