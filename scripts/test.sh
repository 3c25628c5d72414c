#!/usr/bin/env bash
# Install unifuse with its test extras (torch pinned to the local CPU wheel) and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[test]"
python -m pytest -q "$@"
