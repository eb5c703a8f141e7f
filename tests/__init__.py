from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the project root, whichever folder of tests/ a test sits in
