"""The agent's configuration: schema, loader and the problems it reports."""

from agent.config.loader import check_config_main, load_config
from runtime.config.errors import ConfigError, Problem

__all__ = ["ConfigError", "Problem", "check_config_main", "load_config"]
