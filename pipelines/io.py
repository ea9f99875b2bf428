"""Reading events and items (CSV, JSONL or Parquet) into Beam, and normalising item rows."""

from __future__ import annotations

import csv
import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from ntr.pipelines.events import REQUIRED_COLUMNS
from ntr.pipelines.validate import parse_json_line

FORMATS = ("jsonl", "csv", "parquet")


def file_format(path: str) -> str:
    """`jsonl`, `csv` or `parquet` from a path or glob's extension (a `.gz` suffix is ignored)."""
    name = path[:-3] if path.endswith(".gz") else path
    ext = name.rsplit(".", 1)[-1].lower()
    if ext in ("jsonl", "json", "ndjson"):
        return "jsonl"
    if ext in ("csv", "parquet"):
        return ext
    raise ValueError(
        f"Cannot tell the format of {path!r}: name it .jsonl, .csv or .parquet (optionally .gz)."
    )


def first_match(pattern: str) -> str:
    """The first file matching `pattern`, with an error saying what was looked for."""
    matches = FileSystems.match([pattern])[0].metadata_list
    if not matches:
        raise FileNotFoundError(f"No file matches {pattern!r}: check the path (a glob is fine).")
    return sorted(m.path for m in matches)[0]


def check_inputs(events_path: str, items_path: str = "") -> None:
    """Raises, before anything is written, when an input is missing or a CSV lacks a column."""
    for pattern in (events_path, items_path):
        if pattern:
            first_match(pattern)
    if file_format(events_path) == "csv":
        header = read_csv_header(events_path)
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{events_path} has columns {header} but lacks {missing}: an events CSV needs a "
                f"header with {list(REQUIRED_COLUMNS)} (optional: watch_ms, duration_ms, reason)."
            )


def read_csv_header(pattern: str) -> list[str]:
    """The column names from the first line of the first file matching `pattern`."""
    with FileSystems.open(first_match(pattern)) as handle:
        line = handle.readline().decode("utf-8")
    return next(csv.reader([line]))


def parse_csv_line(line: str, header: list[str]) -> dict:
    """One CSV line -> dict of strings, or the malformed marker ValidateEvents dead-letters."""
    values = next(csv.reader([line]), [])
    if len(values) != len(header):
        return {"_malformed": line, "_error": f"expected {len(header)} columns, got {len(values)}"}
    return dict(zip(header, values, strict=True))


class ReadRows(beam.PTransform):
    """A CSV / JSONL / Parquet file pattern -> PCollection of row dicts.

    Rows that cannot be parsed come out as `{"_malformed": text, "_error": message}` so that
    validation can dead-letter them instead of the read failing or dropping them.
    """

    def __init__(self, pattern: str, label=None):
        super().__init__(label)
        self._pattern = pattern
        self._format = file_format(pattern)
        first_match(pattern)  # fail at construction, with a clear message, not mid-pipeline
        self._header = read_csv_header(pattern) if self._format == "csv" else None

    def expand(self, pbegin):
        if self._format == "parquet":
            return pbegin | "ReadParquet" >> beam.io.ReadFromParquet(self._pattern)
        if self._format == "csv":
            header = self._header
            return (
                pbegin
                | "ReadCsv" >> beam.io.ReadFromText(self._pattern, skip_header_lines=1)
                | "ParseCsv" >> beam.Map(parse_csv_line, header)
            )
        return (
            pbegin
            | "ReadJsonl" >> beam.io.ReadFromText(self._pattern)
            | "DropBlank" >> beam.Filter(lambda line: line.strip() != "")
            | "ParseJson" >> beam.Map(parse_json_line)
        )


def normalize_item(row: dict) -> dict:
    """A raw item row -> canonical item dict.

    `categories` may be a list, a JSON list string, or a `|`-separated string (CSV).

    Raises:
      ValueError: on a missing item_id or a non-integer duration, saying which row.
    """
    if "_malformed" in row:
        raise ValueError(row["_error"])
    item_id = str(row.get("item_id") or "").strip()
    if not item_id:
        raise ValueError(f"item row without item_id: {row}")
    categories = row.get("categories") or []
    if isinstance(categories, str):
        text = categories.strip()
        categories = json.loads(text) if text.startswith("[") else text.split("|")
    duration = row.get("duration_ms")
    duration = None if duration in (None, "") else int(float(duration))
    return {
        "item_id": item_id,
        "creator_id": str(row.get("creator_id") or "").strip(),
        "categories": [str(c).strip() for c in categories if str(c).strip()],
        "duration_ms": duration,
        "text": str(row.get("text") or ""),
    }


def write_jsonl(path: str, rows) -> int:
    """Writes dicts as JSON lines; returns how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, separators=(",", ":")))
            handle.write("\n")
            count += 1
    return count
