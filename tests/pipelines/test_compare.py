"""`pipelines.compare`: outputs equal up to record order and timings, and a changed record shows."""

import gzip
import json

from ntr.pipelines.compare import differences
from ntr.tfenv import tf


def example(item: str, duration: int) -> bytes:
    features = {
        "item_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode()])),
        "duration_ms": tf.train.Feature(int64_list=tf.train.Int64List(value=[duration])),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def write(folder, records: list[bytes], lines: list[str], seconds: float):
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / "items.tfrecord.gz"), options="GZIP") as writer:
        for record in records:
            writer.write(record)
    with gzip.open(folder / "dead_letter.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    (folder / "stats.json").write_text(json.dumps({"rows_in": 3, "seconds": seconds}))
    (folder / "config.json").write_text(json.dumps({"beam_args": [str(folder)]}))


def test_order_and_timing_do_not_count_but_a_record_does(tmp_path):
    a, b = example("i1", 10), example("i2", 20)
    write(tmp_path / "x", [a, b], ["l1", "l2"], seconds=1.0)
    write(tmp_path / "y", [b, a], ["l2", "l1"], seconds=9.0)
    assert differences(str(tmp_path / "x"), str(tmp_path / "y")) == []
    write(tmp_path / "z", [a, example("i2", 21)], ["l1", "l2", "l3"], seconds=1.0)
    assert differences(str(tmp_path / "x"), str(tmp_path / "z")) == [
        "dead_letter.jsonl.gz",
        "items.tfrecord.gz",
    ]
    (tmp_path / "z" / "items.tfrecord.gz").unlink()
    assert "items.tfrecord.gz" in differences(str(tmp_path / "x"), str(tmp_path / "z"))


def test_shards_of_one_output_are_merged(tmp_path):
    a, b = example("i1", 10), example("i2", 20)
    for folder, shards in (("one", [[a, b]]), ("two", [[b], [a]])):
        (tmp_path / folder).mkdir()
        for k, records in enumerate(shards):
            name = f"train-{k:05d}-of-{len(shards):05d}.tfrecord.gz"
            with tf.io.TFRecordWriter(str(tmp_path / folder / name), options="GZIP") as writer:
                for record in records:
                    writer.write(record)
    assert differences(str(tmp_path / "one"), str(tmp_path / "two")) == []
