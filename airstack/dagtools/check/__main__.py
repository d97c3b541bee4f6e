from airstack.cli import run_main
from airstack.dagtools.check.main import main

raise SystemExit(run_main(main))
