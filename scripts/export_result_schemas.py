"""Write the JSON Schema of every stage result (scaleproof.results) to docs/schemas/, for auditors and for tools
that read a run. tests/unit/test_results.py fails when a committed schema and the models drift apart.

    python scripts/export_result_schemas.py
"""

import json
import sys
from pathlib import Path

from scaleproof.results import FORMAT, schemas

OUT = Path(__file__).resolve().parents[1] / "docs" / "schemas"


def rendered() -> dict[str, str]:
    """File name -> the schema's text, as committed."""
    return {name.replace(".json", ".schema.json"): json.dumps({"$comment": f"scaleproof result format {FORMAT}",
                                                               **schema}, indent=2) + "\n"
            for name, schema in schemas().items()}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (OUT / name).write_text(text)
    print(f"wrote {len(rendered())} schemas to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
