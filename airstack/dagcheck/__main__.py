from airstack.cli import run_main
from airstack.dagcheck.main import main

raise SystemExit(run_main(main))
