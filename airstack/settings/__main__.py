from airstack.cli import run_main
from airstack.settings.main import main

raise SystemExit(run_main(main))
