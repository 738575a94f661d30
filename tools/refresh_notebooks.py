"""Re-run notebooks in place so their stored outputs match the code (nbval compares them).

    python tools/refresh_notebooks.py [notebooks/01-handshake.ipynb ...]   (default: every notebook)

Each notebook runs top to bottom on a fresh kernel, from notebooks/, and is saved without
widget state (it makes noisy diffs, and nbval does not compare widget views).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("widgets", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    print("refreshed", path.name)


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(str(p) for p in NOTEBOOKS.glob("*.ipynb")):
        refresh(Path(name))
