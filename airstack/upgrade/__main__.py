from airstack.cli import run_main
from airstack.upgrade.rehearse import main

raise SystemExit(run_main(main))
