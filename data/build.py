"""Rebuild the bundled data files from the US Census 1990 name lists in the `names` package.

Run `pip install names==0.3.0 && python data/build.py` from the repository root.
"""

from pathlib import Path

import names

HERE = Path(__file__).parent


def read_names(key: str) -> list[str]:
    """Names of one census list, lower-cased, in the list's own order (most common first)."""
    with open(names.FILES[key], encoding="ascii") as f:
        return [line.split()[0].lower() for line in f if line.strip()]


def write(path: Path, items: list[str]) -> None:
    unique = list(dict.fromkeys(items))  # drop repeats, keep first-seen order
    path.write_text("\n".join(unique) + "\n", encoding="utf-8")
    print(f"{path.name}: {len(unique)} items")


if __name__ == "__main__":
    write(HERE / "names.txt", read_names("first:female") + read_names("first:male"))
    write(HERE / "surnames.txt", read_names("last"))
