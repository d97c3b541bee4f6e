from airstack.cli import run_main
from airstack.deploy.main import main

raise SystemExit(run_main(main))
