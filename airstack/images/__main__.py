from airstack.cli import run_main
from airstack.images.main import main

raise SystemExit(run_main(main))
