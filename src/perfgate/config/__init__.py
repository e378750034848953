"""perfgate.yml -> one frozen Config (the sections' dataclasses in model.py).

read.py    reading the file, the environment and --set (precedence, validation of every key at once) -> Config
keys.py    every key with its default and checker (SCHEMA), and the `gates:` rules on the metrics (metrics.py)
checks.py  the checkers of single values, each with its JSON Schema fragment
model.py   Config and its sections, and the limits on values

`from perfgate.config import Config, load_config, ...` keeps working: the names below are the package's API.
"""

from perfgate.config.checks import Field, with_schema
from perfgate.config.keys import DEFAULT_GATES, RULE_CHECKS, RULE_KEYS, SCHEMA
from perfgate.config.model import (
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    LAYER_NAMES,
    REQUIRED,
    BaselineConfig,
    CompareConfig,
    Config,
    ContentionConfig,
    CpuConfig,
    KernelConfig,
    LayersConfig,
    LoadConfig,
    PushgatewayConfig,
    ReportConfig,
    ServiceConfig,
    TargetConfig,
    TlsConfig,
)
from perfgate.config.read import build_config, config_keys, load_config, read_config_file
from perfgate.metrics import GateRule

__all__ = [
    "DEFAULT_CONFIG_FILE", "DEFAULT_GATES", "ENV_PREFIX", "LAYER_NAMES", "REQUIRED", "RULE_CHECKS", "RULE_KEYS",
    "SCHEMA", "BaselineConfig", "CompareConfig", "Config", "ContentionConfig", "CpuConfig", "Field", "GateRule",
    "KernelConfig", "LayersConfig", "LoadConfig", "PushgatewayConfig", "ReportConfig", "ServiceConfig",
    "TargetConfig", "TlsConfig", "build_config", "config_keys", "load_config", "read_config_file", "with_schema",
]
