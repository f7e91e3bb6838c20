"""`make demo`: the simulated store, the agent, and a short story at its door."""
