"""Write ``meddiag_desktop/deid/option_table.py`` from a generated copy of PS3.15 Table E.1-1.

The option columns of Table E.1-1 (which attributes the Retain Longitudinal Temporal
Information with Modified Dates, Retain Patient Characteristics and Clean Descriptors options
keep or clean) are read from ``confidentiality_profile_attributes.json`` of the
``dicom-standard`` package (Innolitics' parse of the standard's own tables, a dev dependency),
never typed in by hand. Run it after upgrading that package::

    .venv/bin/python tools/generate_deid_option_table.py

``tests/deid/test_profile_table.py`` checks that the module in the tree is what this writes.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import distribution, version
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "meddiag_desktop" / "deid" / "option_table.py"
# JSON column -> (constant in the module, what it is)
COLUMNS = {
    "rtnLongModifDatesOpt": (
        "RETAIN_MODIFIED_DATES",
        "Retain Longitudinal Temporal Information with Modified Dates Option",
    ),
    "rtnPatCharsOpt": ("RETAIN_PATIENT_CHARACTERISTICS", "Retain Patient Characteristics Option"),
    "cleanDescOpt": ("CLEAN_DESCRIPTORS", "Clean Descriptors Option"),
}


def table_rows() -> list[dict[str, str]]:
    """Table E.1-1 as the installed ``dicom-standard`` package holds it."""
    dist = distribution("dicom-standard")
    (path,) = [f for f in dist.files or () if f.name == "confidentiality_profile_attributes.json"]
    return list(json.loads(Path(str(dist.locate_file(path))).read_text(encoding="utf-8")))


def single_tag(text: str) -> int | None:
    """``(0010,0010)`` -> 0x00100010; None for a repeating group or the private-tag row."""
    digits = text.strip().strip("()").replace(",", "")
    if len(digits) != 8 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        return None
    return int(digits, 16)


def render(rows: list[dict[str, str]]) -> str:
    source = f"dicom-standard {version('dicom-standard')}"
    lines = [
        '"""The option columns of PS3.15 Table E.1-1: GENERATED, do not edit.',
        "",
        f"Written by tools/generate_deid_option_table.py from {source} (Innolitics' JSON parse",
        "of the standard's tables, confidentiality_profile_attributes.json). Each mapping is",
        "tag -> action code of that option's column (K keep, C clean), with the attribute's name.",
        '"""',
        "",
        f'SOURCE = "{source}, confidentiality_profile_attributes.json"',
    ]
    listed = sorted({tag for row in rows if (tag := single_tag(row["tag"])) is not None})
    lines += [
        "",
        "# Every single attribute that edition of Table E.1-1 lists (its option columns say",
        "# nothing about attributes added to the table later).",
        "LISTED: frozenset[int] = frozenset({",
        *(f"    0x{tag:08X}," for tag in listed),
        "})",
    ]
    for column, (constant, title) in COLUMNS.items():
        entries = sorted(
            (tag, row[column].strip(), row["name"].strip())
            for row in rows
            if column in row and (tag := single_tag(row["tag"])) is not None
        )
        lines += ["", f"# {title}", f"{constant}: dict[int, str] = {{"]
        lines += [f'    0x{tag:08X}: "{code}",  # {name}' for tag, code, name in entries]
        lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    TARGET.write_text(render(table_rows()), encoding="utf-8")
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
