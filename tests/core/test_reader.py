"""The one CSV/JSONL/list reader: limits stop reading, decoding, formats, errors naming places."""

from __future__ import annotations

import json

import pytest

import core.reader as reader
from core.errors import ConfidantError
from core.reader import (
    MAX_JSON_DEPTH,
    ReaderError,
    format_from_name,
    normalise_keys,
    parse_json,
    read_lines,
    read_table,
    read_text,
    sniff_format,
)


def table(text, **options):
    options = {"name": "t", "max_bytes": 100_000, "max_rows": 100, **options}
    return read_table(text, **options)


def test_errors_are_confidant_errors():
    assert issubclass(ReaderError, ConfidantError)


# -- bytes ---------------------------------------------------------------------------------------


def test_a_file_is_read_no_further_than_the_byte_limit(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_bytes(b"a\n" * 1000)
    asked = []
    real_open = open

    class Spy:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, size=-1):
            asked.append(size)
            return self.handle.read(size)

    def counting_open(file, mode="r", *args, **kwargs):
        return Spy(real_open(file, mode, *args, **kwargs))

    monkeypatch.setattr(reader, "open", counting_open, raising=False)
    # A file growing after its size was taken (stat says small) is still cut at the limit.
    monkeypatch.setattr(type(path), "stat", lambda self, **kw: type("S", (), {"st_size": 0})())
    with pytest.raises(ReaderError, match=r"big.csv is too large \(larger than 1,000 bytes"):
        read_text(path, max_bytes=1000)
    assert asked == [1001]


def test_byte_limits_for_files_bytes_and_text(tmp_path):
    path = tmp_path / "d.csv"
    with open(path, "wb") as f:
        f.truncate(5_000_001)  # sparse: nothing is written
    with pytest.raises(ReaderError, match="larger than 5 MB, the limit"):
        read_text(path, max_bytes=5_000_000)
    assert read_text(b"x" * 10, max_bytes=10) == "x" * 10
    with pytest.raises(ReaderError, match="too large"):
        read_text(b"x" * 11, max_bytes=10)
    # Text is measured in UTF-8 bytes, not characters: é is two.
    assert read_text("é" * 5, max_bytes=10) == "é" * 5
    with pytest.raises(ReaderError, match="the text is too large"):
        read_text("é" * 6, max_bytes=10)
    with pytest.raises(ReaderError, match="too large"):
        table("a\n" + "x" * 100_000)


def test_a_missing_file_cannot_be_read(tmp_path):
    with pytest.raises(ReaderError, match="cannot read nope.csv: No such file"):
        read_text(tmp_path / "nope.csv", max_bytes=10)


# -- decoding ------------------------------------------------------------------------------------


def test_utf8_with_or_without_a_byte_order_mark():
    assert read_text("\ufeffquestion".encode()) == "question"
    assert read_text("\ufeffquestion") == "question"
    assert read_text("\ufeff\ufeffq".encode()) == "\ufeffq"  # one mark, not every one
    assert read_text("café".encode()) == "café"
    assert table("\ufeffQuestion,answer\nq,a\n".encode()).columns == ["question", "answer"]


def test_non_utf8_names_the_byte():
    with pytest.raises(ReaderError, match=r"f.csv is not UTF-8 text \(byte 7\); save it as UTF-8"):
        read_text("a,b\ncaf\u00e9".encode("latin-1"), name="f.csv")


@pytest.mark.parametrize("source", ["a\nb\x00c", b"a\nb\x00c"])
def test_nul_characters_are_refused_naming_the_line(source):
    with pytest.raises(ReaderError, match=r"NUL character in x \(line 2\)"):
        read_text(source, name="x")
    with pytest.raises(ReaderError, match="NUL"):
        read_lines(source)
    with pytest.raises(ReaderError, match="NUL"):
        table(source)


# -- formats -------------------------------------------------------------------------------------


def test_formats_from_content_and_from_the_suffix():
    assert sniff_format('\n  {"a": 1}\n') == "jsonl"
    assert sniff_format("a\tb\n1\t2\n") == "tsv"
    assert sniff_format("a,b\tc\n") == "csv"
    assert sniff_format("[1, 2]") == "csv"
    accepted = {".csv": "csv", ".jsonl": "jsonl"}
    assert format_from_name("X.CSV", accepted, ".csv or .jsonl") == "csv"
    with pytest.raises(ReaderError, match=r"unsupported file type '.txt': upload a .csv or"):
        format_from_name("x.txt", accepted, ".csv or .jsonl")
    with pytest.raises(ReaderError, match=r"'\(none\)'"):
        format_from_name("README", accepted, ".csv or .jsonl")


def test_csv_and_tsv_read_alike():
    csv_rows = table('question,answer\nq1,"a, b"\nq2,c\n').rows
    tsv = table("question\tanswer\nq1\ta, b\nq2\tc\n")
    assert tsv.format == "tsv" and table("a,b\n1,2\n").format == "csv"
    assert [r.data for r in tsv.rows] == [r.data for r in csv_rows]
    assert csv_rows[0].data == {"question": "q1", "answer": "a, b"}
    # A given format wins over the content: a TSV read as CSV is one column.
    assert table("a\tb\n1\t2\n", fmt="csv").columns == ["a\tb"]


def test_jsonl_rows():
    rows = table('{"Question": "q", "answers": ["a"]}\n\n  \n{"question": "r"}\n').rows
    assert [r.data for r in rows] == [{"question": "q", "answers": ["a"]}, {"question": "r"}]
    assert [(r.number, r.index, r.where) for r in rows] == [(1, 1, "line 1"), (4, 2, "line 4")]
    assert table('"a"\n["b"]\n', fmt="jsonl", objects_only=False).rows[1].data == ["b"]
    with pytest.raises(ReaderError, match=r"t, line 2 must be a JSON object"):
        table('{"a": 1}\n"b"\n', fmt="jsonl")


def test_jsonl_lines_end_only_at_line_breaks():
    # JSON allows U+2028 and U+0085 unescaped in a string; they do not end a JSONL line.
    text = (
        json.dumps({"answer": "a\u2028b\x85c"}, ensure_ascii=False) + "\r\n\r" + '{"answer": "d"}'
    )
    rows = table(text, fmt="jsonl").rows
    assert [r.data["answer"] for r in rows] == ["a\u2028b\x85c", "d"]
    assert [r.number for r in rows] == [1, 3]


# -- rows ----------------------------------------------------------------------------------------


def test_header_normalisation_and_aliases():
    aliases = {"input": ("question", "prompt"), "response": ("answer",)}
    t = table(" Prompt , ANSWER ,Question,extra\np,a,q,e\n", aliases=aliases)
    assert t.header == ["Prompt", "ANSWER", "Question", "extra"]
    # "question" comes before "prompt" among the aliases of "input": it is the input.
    assert t.columns == ["prompt", "response", "input", "extra"]
    assert t.rows[0].data == {"prompt": "p", "response": "a", "input": "q", "extra": "e"}
    assert table("Q,a\n1,2\n", fold_case=False).columns == ["Q", "a"]
    assert normalise_keys({" Text ": "x"}, {"answer": ("text",)}) == {"answer": "x"}
    assert normalise_keys({"answer": 1, "text": 2}, {"answer": ("text",)}) == {
        "answer": 1,
        "text": 2,
    }


def test_blank_lines_are_skipped_and_rows_keep_their_numbers():
    t = table("\n\na,b\n1,2\n\n3,4\n,\n")
    assert [(r.number, r.index) for r in t.rows] == [(4, 1), (6, 2), (7, 3)]
    assert t.rows[2].data == {"a": "", "b": ""}  # a row of empty cells is the caller's to judge
    assert table("a,b\n").rows == [] and table("").rows == [] and table("").columns == []


def test_short_and_long_csv_rows():
    short, long = table("a,b,c\n1\n1,2,3,4,5\n").rows
    assert short.data == {"a": "1", "b": None, "c": None} and short.extra == ()
    assert long.data == {"a": "1", "b": "2", "c": "3"} and long.extra == ("4", "5")


def test_the_row_limit_stops_reading(monkeypatch):
    parsed = []
    real = reader.parse_json
    monkeypatch.setattr(reader, "parse_json", lambda *a, **k: parsed.append(1) or real(*a, **k))
    lines = "\n".join(json.dumps({"n": k}) for k in range(1000))  # 10,890 bytes
    with pytest.raises(ReaderError, match=r"more than 3 questions in t; give at most 3"):
        table(lines, max_rows=3, what="questions")
    assert len(parsed) == 4  # the fourth row is read, the 996 after it are not
    assert len(table(lines, max_rows=1000).rows) == 1000
    with pytest.raises(ReaderError, match="more than 2 rows"):
        table("a\n1\n2\n3\n", max_rows=2)
    assert len(table("a\n1\n\n\n2\n", max_rows=2).rows) == 2  # blank lines do not count


# -- errors naming their place -------------------------------------------------------------------


def test_jsonl_errors_name_the_line():
    with pytest.raises(ReaderError, match=r"d.jsonl, line 3 is not JSON: it does not parse at"):
        table('{"a": 1}\n\n{"a": \n', name="d.jsonl")
    with pytest.raises(ReaderError, match="line 1 is not valid JSON"):
        table("{oops", json_message=reader.NOT_VALID_JSON)
    with pytest.raises(ReaderError, match=r"the list is not JSON: it does not parse at line 2"):
        parse_json('[\n"a",]', "the list")


def test_csv_errors_name_the_row():
    with pytest.raises(ReaderError, match=r"t, row 3 is not valid CSV: unexpected end of data"):
        table('a,b\n1,2\n3,"unterminated\n', strict_quotes=True)
    # Without strict quoting the open quote runs to the end of the file, as csv reads it.
    assert table('a,b\n1,2\n3,"unterminated\n').rows[1].data == {"a": "3", "b": "unterminated\n"}


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_nesting_is_refused(opener):
    closer = "]" if opener == "[" else "}"
    fine = opener * MAX_JSON_DEPTH + "1" + closer * MAX_JSON_DEPTH
    assert parse_json(fine, "x") is not None
    deeper = opener * (MAX_JSON_DEPTH + 1) + "1" + closer * (MAX_JSON_DEPTH + 1)
    with pytest.raises(ReaderError, match=f"nested more than {MAX_JSON_DEPTH} levels"):
        parse_json(deeper, "x")
    # So deep that json itself gives up (a RecursionError): still a clear message.
    with pytest.raises(ReaderError, match=r"t, line 1 is JSON nested more than"):
        table(opener * 100_000, fmt="jsonl", max_bytes=10**6)
    assert parse_json('"[[[[[[[[[[[[[[[[[[[[[[[[["', "x").startswith("[")  # brackets in a string


# -- one item per line ---------------------------------------------------------------------------


def test_read_lines():
    assert read_lines("  a \r\n\n\tb\n \n") == ["a", "b"]
    assert read_lines(b"\xef\xbb\xbfa\nb") == ["a", "b"]
    with pytest.raises(ReaderError, match="more than 2 answers in the pasted text; give at most 2"):
        read_lines("a\nb\nc", name="the pasted text", max_lines=2, what="answers")
    assert read_lines("a\n\n\nb", max_lines=2) == ["a", "b"]
    with pytest.raises(ReaderError, match="too large"):
        read_lines("abc", max_bytes=2)


def test_a_json_list_stops_at_its_item_limit_before_parsing_the_rest(monkeypatch):
    from core.reader import parse_json_list

    assert parse_json_list(' [ "a", {"b": [1]} ] ', "the list", max_items=2) == ["a", {"b": [1]}]
    assert parse_json_list("[]", "the list", max_items=2) == []
    decoded = []
    real = reader._JSON.raw_decode
    monkeypatch.setattr(
        reader._JSON, "raw_decode", lambda *a: decoded.append(1) or real(*a), raising=False
    )
    huge = "[" + '"a",' * 100_000 + '"a"]'
    with pytest.raises(ReaderError, match="more than 3 answers in the list; give at most 3"):
        parse_json_list(huge, "the list", max_items=3, what="answers")
    assert len(decoded) == 3  # the 99,998 other items were never decoded


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2", "does not parse"),
        ("[1 2]", "does not parse"),
        ("[1,]", "does not parse"),
        ("[1] [2]", "does not parse"),
        ("[" + "[" * 30 + "]" * 30 + "]", "nested more than 20 levels"),
        ("[" * 100_000, "nested more than 20 levels"),
    ],
)
def test_a_bad_json_list_names_the_list(text, message):
    from core.reader import parse_json_list

    with pytest.raises(ReaderError, match=f"the list .*{message}"):
        parse_json_list(text, "the list", max_items=10)
