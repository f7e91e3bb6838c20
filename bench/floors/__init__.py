"""Floors and peers measured in the same run as the figure they judge, because machines
here differ by 2-3x from one session to the next: a figure alone says little, its ratio
to what the bare machine does says how much our code costs (bench/README.md)."""
