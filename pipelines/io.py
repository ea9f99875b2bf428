"""Reading events and items (CSV, JSONL or Parquet) into Beam, and normalising item rows."""

from __future__ import annotations

import csv
import json

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

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
    matches = matched_files(pattern)
    if not matches:
        raise FileNotFoundError(f"No file matches {pattern!r}: check the path (a glob is fine).")
    return matches[0]


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


def runner_executes_reads(options: PipelineOptions) -> bool:
    """False for a runner that cannot execute `beam.io.Read`.

    Beam 2.77's DaskRunner translates only Create, ParDo, GroupByKey and Flatten; a read becomes
    a no-op that hands `None` to the next step. On it, `ReadLines` reads files by a ParDo over
    byte ranges instead (`file_ranges`, `range_lines`), so the reading still spreads.
    """
    runner = options.view_as(StandardOptions).runner
    name = runner if isinstance(runner, str) or runner is None else type(runner).__name__
    return not (name or "").endswith("DaskRunner")


def matched_files(pattern: str) -> list[str]:
    """Every file matching `pattern`, sorted."""
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


# Byte ranges a text file is cut into on runners that read by ParDo (`ReadLines`).
RANGE_BYTES = 4 << 20


def file_ranges(pattern: str, range_bytes: int = RANGE_BYTES) -> list[tuple[str, int, int]]:
    """(path, start, stop) byte ranges covering every file matching `pattern`, sorted; a
    compressed file is one range (0, -1): it cannot be entered in the middle."""
    ranges = []
    for meta in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        if CompressionTypes.detect_compression_type(meta.path) != CompressionTypes.UNCOMPRESSED:
            ranges.append((meta.path, 0, -1))
            continue
        size = meta.size_in_bytes
        ranges += [
            (meta.path, start, min(start + range_bytes, size)) for start in range(0, size, range_bytes)
        ]
    return ranges


def range_lines(file_range: tuple[str, int, int], skip_header_lines: int = 0):
    """The lines that start inside one of `file_ranges`, without line endings, as
    `ReadFromText` gives them: every line of a file comes out of exactly one range, and the
    first `skip_header_lines` of the file out of none."""
    path, start, stop = file_range
    with FileSystems.open(path) as handle:
        position, number = start, 0
        if start > 0:
            handle.seek(start - 1)
            # The rest of the line that began before `start` (just "\n" when one begins at it).
            position = start - 1 + len(handle.readline())
        while stop < 0 or position < stop:
            raw = handle.readline()
            if not raw:
                break
            position += len(raw)
            if start > 0 or number >= skip_header_lines:
                yield raw.decode("utf-8").rstrip("\r\n")
            number += 1


def parquet_rows(path: str):
    """The rows of one Parquet file as dicts, as `ReadFromParquet` gives them."""
    import pyarrow.parquet as pq  # noqa: PLC0415 (only for Parquet inputs)

    with FileSystems.open(path) as handle:
        yield from pq.read_table(handle).to_pylist()


class ReadLines(beam.PTransform):
    """A text file pattern -> PCollection of its lines (without line endings), on any runner."""

    def __init__(self, pattern: str, skip_header_lines: int = 0, label=None):
        super().__init__(label)
        self._pattern, self._skip = pattern, skip_header_lines

    def expand(self, pbegin):
        if runner_executes_reads(pbegin.pipeline.options):
            return pbegin | "Read" >> beam.io.ReadFromText(self._pattern, skip_header_lines=self._skip)
        ranges = pbegin | "List" >> beam.Create(file_ranges(self._pattern))
        return ranges | "ReadRanges" >> beam.FlatMap(range_lines, self._skip)


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
            if not runner_executes_reads(pbegin.pipeline.options):
                files = pbegin | "ListParquet" >> beam.Create(matched_files(self._pattern))
                return files | "ReadParquet" >> beam.FlatMap(parquet_rows)
            return pbegin | "ReadParquet" >> beam.io.ReadFromParquet(self._pattern)
        if self._format == "csv":
            lines = pbegin | "ReadCsv" >> ReadLines(self._pattern, skip_header_lines=1)
            return lines | "ParseCsv" >> beam.Map(parse_csv_line, self._header)
        return (
            pbegin
            | "ReadJsonl" >> ReadLines(self._pattern)
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
