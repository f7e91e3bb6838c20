"""Remote operations: signed commands in, replies out (CONTRACTS section 3)."""
