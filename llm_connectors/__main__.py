"""``python -m llm_connectors``: the same command line as ``llm-connectors``."""

from .cli import run

if __name__ == "__main__":
    run()
