"""YAML configs with line numbers: reading, `${VAR}` expansion, validation messages."""
