"""`python -m airstack` lists the modules that have a command line."""

print("usage: python -m airstack.dagcheck | python -m airstack.bench (or the nox sessions: nox -l)")
