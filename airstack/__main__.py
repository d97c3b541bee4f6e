"""`python -m airstack` lists the modules that have a command line."""

print("usage: python -m airstack.dagtools.check | python -m airstack.bench (or the nox sessions: nox -l)")
