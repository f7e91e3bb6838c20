"""shopgate-sim: the demo store's hardware, simulated on pseudo-terminals (CONTRACTS section 5)."""
