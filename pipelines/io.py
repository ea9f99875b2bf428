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
        line = handle.readline().decode("utf-8", "replace")
    return next(csv.reader([line.rstrip("\r\n")]))


def _marker(text: str, error: str, kind: str = "malformed_row") -> dict:
    """What a reader hands on for a record it could not parse (`validate.malformed`)."""
    return {"_malformed": text, "_error": error, "_kind": kind}


def parse_csv_line(line: str, header: list[str]) -> dict:
    """One CSV record (quoted newlines inside) -> dict of strings, or the malformed marker
    validation dead-letters (wrong column count, a field over the csv module's size limit)."""
    try:
        values = next(csv.reader([line]), [])
    except csv.Error as err:
        return _marker(line[:1000], f"not a CSV record: {err}")
    if len(values) != len(header):
        return _marker(line, f"expected {len(header)} columns, got {len(values)}")
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
_SCAN_BYTES = 16 << 20


def _record_starts(path: str, size: int, range_bytes: int, quoted: bool) -> list[tuple[int, int]]:
    """(offset, line number) where each range of about `range_bytes` starts: right after a
    newline that ends a record. With `quoted` (CSV) a newline inside a quoted field ends
    none: a record boundary is a newline after an even number of double quotes."""
    starts, target = [(0, 1)], range_bytes
    position, line, odd = 0, 1, False
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        while target < size:
            block = handle.read(_SCAN_BYTES)
            if not block:
                break
            at = max(0, target - position)
            while at < len(block):
                newline = block.find(b"\n", at)
                if newline < 0:
                    break
                if quoted and odd ^ bool(block.count(b'"', 0, newline) & 1):
                    at = newline + 1  # inside a quoted field: not a record boundary
                    continue
                if newline + 1 + position < size:
                    starts.append((position + newline + 1, line + block.count(b"\n", 0, newline + 1)))
                target = position + newline + 1 + range_bytes
                at = max(newline + 1, target - position)
            odd ^= bool(block.count(b'"') & 1)
            line += block.count(b"\n")
            position += len(block)
    return starts


def file_ranges(pattern: str, range_bytes: int = RANGE_BYTES, quoted: bool = False) -> list[tuple]:
    """(path, start, stop, first line) byte ranges covering every file matching `pattern`,
    sorted, each starting and ending on a record boundary (`_record_starts`: one read of each
    file, at pipeline construction); a compressed file is one range (0, -1): it cannot be
    entered in the middle."""
    ranges = []
    for meta in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        if CompressionTypes.detect_compression_type(meta.path) != CompressionTypes.UNCOMPRESSED:
            ranges.append((meta.path, 0, -1, 1))
            continue
        starts = _record_starts(meta.path, meta.size_in_bytes, range_bytes, quoted)
        stops = [offset for offset, _ in starts[1:]] + [meta.size_in_bytes]
        pairs = zip(starts, stops, strict=True)
        ranges += [(meta.path, start, stop, line) for (start, line), stop in pairs if stop > start]
    return ranges


def range_records(file_range: tuple, skip_header_lines: int = 0, quoted: bool = False):
    """(line number, bytes) of each record in one of `file_ranges`, without its line ending:
    a line, or with `quoted` (CSV) the lines of a record whose quoted fields hold newlines.
    Every record of a file comes out of exactly one range, the first `skip_header_lines` of
    the file out of none. Bytes, not text: a record that is not UTF-8 becomes a dead letter
    (`decode_record`), not a failed read."""
    path, start, stop, first_line = file_range
    with FileSystems.open(path) as handle:
        if stop < 0:  # a compressed file, streamed line by line
            chunks = iter(handle.readline, b"")
        else:  # one read for the range (it ends on a record boundary)
            handle.seek(start)
            data = handle.read(stop - start)
            # Split on "\n" only: JSON strings may hold U+2028, which str.splitlines() cuts at.
            chunks = data.split(b"\n")
            if chunks and not chunks[-1]:
                chunks.pop()
        pending, pending_line, odd = None, 0, False
        for number, chunk in enumerate(chunks, first_line):
            raw = chunk[:-1] if chunk.endswith(b"\n") else chunk  # streamed lines keep theirs
            if start == 0 and number <= skip_header_lines:
                continue
            if quoted and (pending is not None or raw.count(b'"') & 1):
                if pending is None:
                    pending, pending_line = raw, number
                else:
                    pending += b"\n" + raw
                odd ^= bool(raw.count(b'"') & 1)
                if not odd:
                    yield pending_line, pending.rstrip(b"\r")
                    pending = None
                continue
            yield number, raw.rstrip(b"\r")
        if pending is not None:  # a quote never closed before the end of the file
            yield pending_line, pending.rstrip(b"\r")


def decode_record(raw: bytes) -> tuple[str | None, str | None]:
    """(text, None), or (None, why) for bytes that are not UTF-8."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as err:
        return None, f"not UTF-8: byte {err.start} of the record is {raw[err.start : err.start + 1]!r}"


def range_lines(file_range: tuple, skip_header_lines: int = 0):
    """The text lines of one of `file_ranges` (`range_records`), for readers that need text;
    a line that is not UTF-8 stops the read with its file and line."""
    for number, raw in range_records(file_range, skip_header_lines):
        text, error = decode_record(raw)
        if error:
            raise ValueError(f"{file_range[0]} line {number}: {error}; fix or remove that line.")
        yield text


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


def _located(row: dict, path: str, line: int) -> dict:
    # Where a row came from travels with it, so its dead letter can name file and line.
    row["_file"], row["_line"] = path, line
    return row


def parse_records(file_range: tuple, header: list[str] | None = None):
    """The rows of one range of a JSONL (`header` None) or CSV file, each with `_file` and
    `_line`; a record that cannot be a row comes out as a malformed marker. Blank JSONL lines
    are skipped."""
    path = file_range[0]
    quoted = header is not None
    for line, raw in range_records(file_range, skip_header_lines=int(quoted), quoted=quoted):
        text, error = decode_record(raw)
        if error:
            shown = raw.decode("utf-8", "backslashreplace")[:1000]
            yield _located(_marker(shown, error, "bad_encoding"), path, line)
        elif quoted:
            yield _located(parse_csv_line(text, header), path, line)
        elif text.strip():
            yield _located(parse_json_line(text), path, line)


def parquet_rows(path: str):
    """The rows of one Parquet file, each with `_file` and `_line` (its row number)."""
    number = 0
    for batch in parquet_batches(path):
        for row in batch:
            number += 1
            yield _located(row, path, number)


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


class ReadRowBatches(beam.PTransform):
    """A CSV / JSONL / Parquet file pattern -> PCollection of lists of row dicts.

    Every row carries `_file` and `_line` (its first line; for Parquet its row number). Rows
    that cannot be parsed (not UTF-8, not JSON, too deep or too long a number for JSON, a CSV
    record with the wrong column count or an oversized field) come out as
    `{"_malformed": text, "_error": message, ...}` so that validation can dead-letter them
    instead of the read failing or dropping them. CSV is split into records by quotes, not
    lines: a quoted field may hold a newline. Blank JSONL lines are skipped.
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
            return files | "ReadParquet" >> beam.FlatMap(lambda path: _batches(parquet_rows(path)))
        header = self._header
        ranges = file_ranges(self._pattern, quoted=header is not None)
        return (
            pbegin
            | "Ranges" >> beam.Create(ranges)
            | "ReadRows" >> beam.FlatMap(lambda r: _batches(parse_records(r, header)))
        )


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
