"""Reading events and items (CSV, JSONL or Parquet) into Beam, and normalising item rows."""

from __future__ import annotations

import csv
import json

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
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
    """One CSV line -> dict of strings, or the malformed marker validation dead-letters."""
    values = next(csv.reader([line]), [])
    if len(values) != len(header):
        return {"_malformed": line, "_error": f"expected {len(header)} columns, got {len(values)}"}
    return dict(zip(header, values, strict=True))


def matched_files(pattern: str) -> list[str]:
    """Every file matching `pattern`, sorted."""
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


# A compressed event log is counted this many times its size when sizing work (the default
# world's JSONL log gzips to 1/7.2 of its size).
COMPRESSED_RATIO = 6


def input_bytes(pattern: str) -> int:
    """The (estimated uncompressed) size of every file matching `pattern`."""
    total = 0
    for meta in FileSystems.match([pattern])[0].metadata_list:
        compressed = CompressionTypes.detect_compression_type(meta.path) != CompressionTypes.UNCOMPRESSED
        total += meta.size_in_bytes * (COMPRESSED_RATIO if compressed else 1)
    return total


# The byte ranges text files are read in (`ReadLineBatches`): the unit of work a runner spreads.
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
        position = start
        if start > 0:
            handle.seek(start - 1)
            # The rest of the line that began before `start` (just "\n" when one begins at it).
            position = start - 1 + len(handle.readline())
        if stop < 0:  # a compressed file, streamed line by line
            chunks = iter(handle.readline, b"")
        else:  # one read for the range, plus the rest of its last line
            data = handle.read(max(0, stop - position))
            if data and not data.endswith(b"\n"):
                data += handle.readline()
            # Split on "\n" only: JSON strings may hold U+2028, which str.splitlines() cuts at.
            chunks = data.split(b"\n")
            if chunks and not chunks[-1]:
                chunks.pop()
        for number, raw in enumerate(chunks):
            if start > 0 or number >= skip_header_lines:
                yield raw.decode("utf-8").rstrip("\r\n")


# Rows per batch: bounds the memory of one batch whatever the range size.
BATCH_ROWS = 20_000


def _batches(rows, size: int = BATCH_ROWS):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def parquet_batches(path: str, size: int = BATCH_ROWS):
    """The rows of one Parquet file as lists of at most `size` dicts (`to_pylist` rows)."""
    import pyarrow.parquet as pq  # noqa: PLC0415 (only for Parquet inputs)

    with FileSystems.open(path) as handle:
        for record_batch in pq.ParquetFile(handle).iter_batches(batch_size=size):
            yield record_batch.to_pylist()


class ReadLineBatches(beam.PTransform):
    """A text file pattern -> PCollection of lists of its lines (no line endings), in file order
    within a list.

    Every runner reads the same way: a ParDo over `file_ranges` byte ranges (so reading spreads
    over workers; Beam 2.77's DaskRunner cannot run `beam.io.Read` at all), each range handing
    on its lines in lists of at most `BATCH_ROWS`. Batches let the next step pay Beam's
    per-element cost once per list instead of once per line.
    """

    def __init__(self, pattern: str, skip_header_lines: int = 0, label=None):
        super().__init__(label)
        self._pattern, self._skip = pattern, skip_header_lines

    def expand(self, pbegin):
        skip = self._skip
        return (
            pbegin
            | "Ranges" >> beam.Create(file_ranges(self._pattern))
            | "ReadRanges" >> beam.FlatMap(lambda r: _batches(range_lines(r, skip)))
        )


class ReadLines(beam.PTransform):
    """A text file pattern -> PCollection of its lines (without line endings), on any runner."""

    def __init__(self, pattern: str, skip_header_lines: int = 0, label=None):
        super().__init__(label)
        self._pattern, self._skip = pattern, skip_header_lines

    def expand(self, pbegin):
        batches = pbegin | "Batches" >> ReadLineBatches(self._pattern, self._skip)
        return batches | "Unbatch" >> beam.FlatMap(lambda lines: lines)


def parse_json_lines(lines: list[str]) -> list[dict]:
    """JSONL lines -> rows (`parse_json_line`), blank lines dropped."""
    return [parse_json_line(line) for line in lines if line.strip()]


def parse_csv_lines(lines: list[str], header: list[str]) -> list[dict]:
    """CSV lines -> rows (`parse_csv_line`)."""
    return [parse_csv_line(line, header) for line in lines]


class ReadRowBatches(beam.PTransform):
    """A CSV / JSONL / Parquet file pattern -> PCollection of lists of row dicts.

    Rows that cannot be parsed come out as `{"_malformed": text, "_error": message}` so that
    validation can dead-letter them instead of the read failing or dropping them. Blank JSONL
    lines are skipped.
    """

    def __init__(self, pattern: str, label=None):
        super().__init__(label)
        self._pattern = pattern
        self._format = file_format(pattern)
        first_match(pattern)  # fail at construction, with a clear message, not mid-pipeline
        self._header = read_csv_header(pattern) if self._format == "csv" else None

    def expand(self, pbegin):
        if self._format == "parquet":
            files = pbegin | "ListParquet" >> beam.Create(matched_files(self._pattern))
            return files | "ReadParquet" >> beam.FlatMap(parquet_batches)
        if self._format == "csv":
            lines = pbegin | "ReadCsv" >> ReadLineBatches(self._pattern, skip_header_lines=1)
            return lines | "ParseCsv" >> beam.Map(parse_csv_lines, self._header)
        lines = pbegin | "ReadJsonl" >> ReadLineBatches(self._pattern)
        return lines | "ParseJson" >> beam.Map(parse_json_lines)


class ReadRows(beam.PTransform):
    """A CSV / JSONL / Parquet file pattern -> PCollection of row dicts (`ReadRowBatches`,
    one element per row)."""

    def __init__(self, pattern: str, label=None):
        super().__init__(label)
        self._batches = ReadRowBatches(pattern)

    def expand(self, pbegin):
        return pbegin | "Batches" >> self._batches | "Unbatch" >> beam.FlatMap(lambda rows: rows)


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
