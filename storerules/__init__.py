"""Rules of the store that the agent and the hub both apply: entry-question answers,
GTIN check digits, how long each kind of signed token may live."""
