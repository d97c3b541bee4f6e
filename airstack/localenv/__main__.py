from airstack.cli import run_main
from airstack.localenv.main import main

raise SystemExit(run_main(main))
