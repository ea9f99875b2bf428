"""Readers on small fixture files written by the tests."""

import pytest

from ntr.pipelines.events import LabelConfig
from ntr.pipelines.readers import read_kuairand, read_kuairand_pure, read_movielens

GENRES = ["unknown", "Action", "Comedy"]


def write_movielens(folder, data_lines):
    folder.mkdir()
    (folder / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)) + "\n")
    (folder / "u.item").write_bytes(
        "1|Caf\xe9 (1995)|01-Jan-1995||http://x|0|1|1\n2|Two (1996)|01-Jan-1996||http://y|0|0|1\n".encode(
            "latin-1"
        )
    )
    (folder / "u.data").write_text(data_lines)
    return folder


def test_movielens(tmp_path):
    folder = write_movielens(tmp_path / "ml", "7\t1\t2\t881250949\n7\t2\t3\t881250950\n8\t1\t5\t881250951\n")
    events, items = read_movielens(str(folder))
    assert [(e["user_id"], e["item_id"], e["timestamp"], e["action"]) for e in events] == [
        ("7", "1", 881250949, "dislike"),
        ("7", "2", 881250950, "view"),
        ("8", "1", 881250951, "like"),
    ]
    assert items[0] == {
        "item_id": "1", "creator_id": "", "categories": ["Action", "Comedy"],
        "duration_ms": None, "text": "Caf\xe9 (1995) | Action Comedy",
    }  # fmt: skip
    assert read_movielens(str(folder / "u.data"))[0] == events  # the file itself works too


def test_movielens_wrong_file(tmp_path):
    folder = write_movielens(tmp_path / "ml", "user,item,rating\n")
    with pytest.raises(ValueError, match="MovieLens u.data lines"):
        read_movielens(str(folder))
    with pytest.raises(FileNotFoundError, match="ml-100k folder"):
        read_movielens(str(tmp_path / "nowhere"))


KUAI_HEADER = "user_id\tvideo_id\tdate\ttime_ms\tplay_time_ms\tduration_ms\tlabel\n"


def test_kuairand(tmp_path):
    path = tmp_path / "k.tsv"
    path.write_text(
        KUAI_HEADER
        + "1\t10\t20220410\t1649581149287\t46186\t45916\t1\n"  # long play, like
        + "1\t11\t20220410\t1649581150000\t2000\t0\t1\n"  # short play (< 3 s), like -> skip
        + "1\t12\t20220410\t1649581151000\t20000\t300000\t1\n"  # 6.7% of duration -> skip
        + "2\t10\t20220411\t1649664552983\t1000\t45000\t0\n"  # hate -> dislike, however short
    )
    events, items = read_kuairand(str(path), LabelConfig())
    assert [(e["user_id"], e["item_id"], e["timestamp"], e["action"]) for e in events] == [
        ("1", "10", 1649581149, "like"),
        ("1", "11", 1649581150, "skip"),
        ("1", "12", 1649581151, "skip"),
        ("2", "10", 1649664552, "dislike"),
    ]
    assert events[1]["duration_ms"] is None and events[1]["watch_ms"] == 2000
    assert [(i["item_id"], i["duration_ms"]) for i in items] == [("10", 45916), ("11", None), ("12", 300000)]


def test_kuairand_wrong_file(tmp_path):
    path = tmp_path / "k.tsv"
    path.write_text("user_id,video_id,label\n1,2,0\n")
    with pytest.raises(ValueError, match="tab-separated KuaiRand"):
        read_kuairand(str(path))


def test_movielens_with_directors_as_creators(tmp_path):
    folder = write_movielens(tmp_path / "ml", "7\t1\t2\t881250949\n7\t2\t3\t881250950\n")
    creators = tmp_path / "directors.csv"
    creators.write_text(
        "movie_id,movie_title,imdb_id,scr_year,verified,directors,writers,cast_top5\n"
        '1,Caf\xe9 (1995),tt1,1995.0,1,Ann Lee|Bo Chan,W,"A|B"\n'
        "2,Two (1996),tt2,2003.0,0,Wrong Match,W,C\n"
    )
    _, items = read_movielens(str(folder), str(creators))
    # First director of a verified row; an unverified (mismatched) row gives no creator.
    assert [(i["item_id"], i["creator_id"]) for i in items] == [("1", "Ann Lee"), ("2", "")]
    creators.write_text("movie_id,title\n1,x\n")
    with pytest.raises(ValueError, match="lacks columns"):
        read_movielens(str(folder), str(creators))


def test_kuairand_pure(tmp_path):
    import gzip

    header = (
        "user_id,video_id,time_ms,date,hourmin,tab,is_rand,is_click,is_like,is_follow,is_comment,"
        "is_forward,is_hate,long_view,play_time_ms,duration_ms,author_id,tag\n"
    )
    rows = [
        '0,10,1650882384975,20220425,1800,1,0,0,0,0,0,0,1,0,1033,168241,77,"11,28"\n',  # hate
        "0,11,1650882390000,20220425,1800,1,1,1,1,0,0,0,0,1,90000,100000,78,12\n",  # like, random
        '1,10,1650882400000,20220425,1800,1,0,0,0,0,0,0,0,0,500,0,77,"11,28"\n',  # short view
        "1,12,1650882410000,20220425,1800,1,0,1,0,1,0,1,0,1,9000,20000,79,\n",  # follow + forward
    ]
    path = tmp_path / "log_standard_20220425_20220508.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(header + "".join(rows))
    events, items = read_kuairand_pure(str(tmp_path))
    assert [(e["user_id"], e["item_id"], e["timestamp"], e["action"], e["watch_ms"], e["duration_ms"])
            for e in events] == [
        ("0", "10", 1650882384, "dislike", 1033, 168241),
        ("0", "11", 1650882390, "like", 90000, 100000),
        ("1", "10", 1650882400, "view", 500, None),
        ("1", "12", 1650882410, "follow", 9000, 20000),
    ]  # fmt: skip
    assert [e["is_random"] for e in events] == [False, True, False, False]
    assert [(i["item_id"], i["creator_id"], i["categories"], i["duration_ms"]) for i in items] == [
        ("10", "77", ["tag_11", "tag_28"], 168241),
        ("11", "78", ["tag_12"], 100000),
        ("12", "79", [], 20000),
    ]
    with gzip.open(path, "wt") as handle:
        handle.write("user_id,video_id\n0,1\n")
    with pytest.raises(ValueError, match="lacks columns"):
        read_kuairand_pure(str(tmp_path))
