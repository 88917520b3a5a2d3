"""Write ``schema.json`` (the catalog file format) beside the catalog: ``python -m llm_connectors.catalog``."""

import json
from pathlib import Path

from . import schema

target = Path(__file__).with_name("schema.json")
target.write_text(json.dumps(schema(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
print(f"wrote {target}")
