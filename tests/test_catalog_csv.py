"""export.bundle.catalog (catalogue CSV ingestion) and runtime.tools.tables (CSV tables with line-numbered errors)."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from export.bundle.catalog import CatalogRow, Problem, read_catalog_csv, settle_problems
from runtime.errors import CatalogError
from runtime.tools.tables import read_table, resolve_path

DEMO_CSV = Path(__file__).resolve().parents[1] / "export" / "demo" / "catalog.csv"


def make_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (16, 12), (20 * i, 100, 200)).save(folder / name, "JPEG")


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """A catalogue folder with real images and a CSV holding good and bad rows (line numbers in comments)."""
    folder = tmp_path / "shop"
    make_images(folder / "images", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    return write(
        folder / "catalog.csv",
        "id,image,title,group\n"  # line 1
        "p1,images/a.jpg,Dior Rouge Couture No. 169 3.5 g,rouge\n"  # 2: good
        "p2,images/b.jpg,,rouge\n"  # 3: empty title
        "p1,images/c.jpg,Dior Rouge Couture No. 170 3.5 g,rouge\n"  # 4: duplicate id
        "p3,images/missing.jpg,Chanel No. 5,\n"  # 5: missing image
        "p4,images/d.jpg,Chanel Rouge Allure 3 g,\n"  # 6: good, no group
        ",,,\n",  # 7: empty id, image and title
    )


def test_good_rows_and_line_numbered_problems(catalogue: Path) -> None:
    rows, problems = read_catalog_csv(catalogue)
    assert [(r.line, r.id) for r in rows] == [(2, "p1"), (6, "p4")]
    assert [p.line for p in problems] == [3, 4, 5, 7]
    by_line = {p.line: p.message for p in problems}
    assert by_line[3] == "empty title"
    assert "duplicate id 'p1'" in by_line[4] and "first on line 2" in by_line[4]
    assert "image not found" in by_line[5] and "missing.jpg" in by_line[5]
    assert by_line[7] == "empty id, image, title"
    assert str(problems[0]) == "line 3: empty title"


def test_rows_carry_resolved_images_titles_and_groups(catalogue: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    rows, _ = read_catalog_csv(catalogue)
    first, second = rows
    assert first == CatalogRow(2, "p1", catalogue.parent / "images" / "a.jpg", "Dior Rouge Couture No. 169 3.5 g", "rouge")
    assert first.image.is_file()
    assert second.group == "p4"  # group defaults to the id
    assert second.image == catalogue.parent / "images" / "d.jpg"


def test_relative_images_resolve_against_the_csv_folder_not_the_cwd(tmp_path: Path, monkeypatch) -> None:
    make_images(tmp_path / "data" / "pics", ["x.jpg"])
    make_images(tmp_path / "elsewhere" / "pics", ["y.jpg"])
    csv_path = write(tmp_path / "data" / "cat.csv", "id,image,title\nx,pics/x.jpg,X\ny,pics/y.jpg,Y\n")
    monkeypatch.chdir(tmp_path / "elsewhere")  # pics/y.jpg exists relative to the cwd only
    rows, problems = read_catalog_csv(csv_path)
    assert [r.id for r in rows] == ["x"]
    assert rows[0].image == tmp_path / "data" / "pics" / "x.jpg"
    assert [p.line for p in problems] == [3]


def test_absolute_image_paths_are_kept(tmp_path: Path) -> None:
    make_images(tmp_path / "abs", ["z.jpg"])
    absolute = tmp_path / "abs" / "z.jpg"
    csv_path = write(tmp_path / "csv" / "cat.csv", f"id,image,title\nz,{absolute},Zed\n")
    rows, problems = read_catalog_csv(csv_path)
    assert not problems and rows[0].image == absolute


def test_settle_problems_raises_naming_the_lines(catalogue: Path) -> None:
    _, problems = read_catalog_csv(catalogue)
    with pytest.raises(CatalogError) as info:
        settle_problems(catalogue, problems, skip_bad=False)
    message = str(info.value)
    assert "4 bad row(s)" in message
    for line in (3, 4, 5, 7):
        assert f"line {line}:" in message
    assert str(catalogue) in message and "--skip-bad" in message


def test_settle_problems_with_skip_bad_lists_them_on_stderr(catalogue: Path, capsys) -> None:
    _, problems = read_catalog_csv(catalogue)
    settle_problems(catalogue, problems, skip_bad=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 4
    for text, line in zip(lines, (3, 4, 5, 7)):
        assert text.startswith("shadematch: skipping") and f"line {line}:" in text and str(catalogue) in text


def test_settle_problems_without_problems_is_silent(catalogue: Path, capsys) -> None:
    settle_problems(catalogue, [], skip_bad=False)
    assert capsys.readouterr() == ("", "")


def test_many_problems_are_summarised(tmp_path: Path) -> None:
    problems = [Problem(line, "empty title") for line in range(2, 32)]
    with pytest.raises(CatalogError, match="30 bad row\\(s\\)") as info:
        settle_problems(tmp_path / "c.csv", problems, skip_bad=False)
    message = str(info.value)
    assert "line 21:" in message and "line 22:" not in message  # the first 20 are listed
    assert "and 10 more" in message


@pytest.mark.parametrize(
    "header, missing",
    [("id,image,group", "title"), ("image,title", "id"), ("id,title", "image"), ("ID,Image,Title", "id, image, title")],
)
def test_missing_column_names_line_1_and_the_column(tmp_path: Path, header: str, missing: str) -> None:
    csv_path = write(tmp_path / "cat.csv", f"{header}\na,b,c\n")
    with pytest.raises(CatalogError, match="line 1") as info:
        read_catalog_csv(csv_path)
    assert f"missing column(s) {missing}" in str(info.value)


def test_non_utf8_row_is_a_bad_row_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 13, fault 6: a stray latin-1 byte used to end the whole build, even with --skip-bad, without a line."""
    make_images(tmp_path / "images", ["a.jpg"])
    body = "id,image,title\na,images/a.jpg,Rouge\n".encode() + "b,images/a.jpg,Lancôme Absolu\n".encode("latin-1")
    csv_path = tmp_path / "cat.csv"
    csv_path.write_bytes(body + b"c,images/a.jpg,Rouge 169\n")
    rows, problems = read_catalog_csv(csv_path)
    assert [r.id for r in rows] == ["a", "c"] and [str(p) for p in problems] == ["line 3: not UTF-8 text (byte 0xf4)"]
    with pytest.raises(CatalogError, match="line 3: not UTF-8 text") as info:
        settle_problems(csv_path, problems, skip_bad=False)
    assert str(csv_path) in str(info.value)
    settle_problems(csv_path, problems, skip_bad=True)
    assert "line 3: not UTF-8 text (byte 0xf4)" in capsys.readouterr().err
    header = tmp_path / "header.csv"
    header.write_bytes("id,image,titl\xe9\n".encode("utf-8").replace(b"\xc3\xa9", b"\xe9"))
    with pytest.raises(CatalogError, match="line 1: not UTF-8 text"):
        read_catalog_csv(header)


def test_bom_header_is_accepted(tmp_path: Path) -> None:
    make_images(tmp_path / "images", ["a.jpg"])
    csv_path = write(tmp_path / "cat.csv", "id,image,title\na,images/a.jpg,Lancôme Absolu\n", encoding="utf-8-sig")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows, problems = read_catalog_csv(csv_path)
    assert not problems
    assert [(r.id, r.title) for r in rows] == [("a", "Lancôme Absolu")]


def test_spaces_around_names_and_values_are_stripped(tmp_path: Path) -> None:
    make_images(tmp_path / "images", ["a.jpg"])
    csv_path = write(tmp_path / "cat.csv", " id , image , title , group \n a , images/a.jpg ,  Title  , g \n")
    rows, problems = read_catalog_csv(csv_path)
    assert not problems
    assert (rows[0].id, rows[0].title, rows[0].group) == ("a", "Title", "g")


def test_multiline_quoted_title_keeps_later_line_numbers_right(tmp_path: Path) -> None:
    make_images(tmp_path / "images", ["a.jpg"])
    csv_path = write(
        tmp_path / "cat.csv",
        'id,image,title\na,images/a.jpg,"two\nlines"\nb,images/a.jpg,\n',  # b's row is on physical line 4
    )
    rows, problems = read_catalog_csv(csv_path)
    assert rows[0].title == "two\nlines"
    assert [p.line for p in problems] == [4]


def test_row_with_too_many_fields_is_a_bad_row(tmp_path: Path) -> None:
    make_images(tmp_path / "images", ["a.jpg"])
    csv_path = write(tmp_path / "cat.csv", "id,image,title\na,images/a.jpg,A\nb,images/a.jpg,B,extra\n")
    rows, problems = read_catalog_csv(csv_path)
    assert [r.id for r in rows] == ["a"] and [str(p) for p in problems] == ["line 3: more fields than the header has"]
    with pytest.raises(CatalogError, match="line 3: more fields than the header"):
        settle_problems(csv_path, problems, skip_bad=False)
    with pytest.raises(CatalogError, match="line 3: more fields than the header"):  # a table without --skip-bad
        list(read_table(csv_path, ("id", "image", "title")))


def test_short_row_reports_the_empty_fields(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "cat.csv", "id,image,title\nonly-id\n")
    _, problems = read_catalog_csv(csv_path)
    assert [(p.line, p.message) for p in problems] == [(2, "empty image, title")]


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="empty file"):
        read_catalog_csv(write(tmp_path / "empty.csv", ""))
    assert read_catalog_csv(write(tmp_path / "header.csv", "id,image,title\n")) == ([], [])


def test_missing_csv_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such file"):
        read_catalog_csv(tmp_path / "nope.csv")


def test_read_table_yields_line_numbers_and_optional_columns(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "q.csv", "image,expected\n\nq1.jpg,p1\nq2.jpg,\n")
    got = list(read_table(csv_path, ("image",), ("expected", "note")))
    assert got == [
        (3, {"image": "q1.jpg", "expected": "p1", "note": ""}),  # the blank line 2 is skipped, not renumbered
        (4, {"image": "q2.jpg", "expected": "", "note": ""}),
    ]


def test_resolve_path(tmp_path: Path) -> None:
    table = tmp_path / "tables" / "t.csv"
    assert resolve_path("img/a.jpg", table) == tmp_path / "tables" / "img" / "a.jpg"
    assert resolve_path(str(tmp_path / "x.jpg"), table) == tmp_path / "x.jpg"
    assert resolve_path("~/a.jpg", table) == Path.home() / "a.jpg"


@pytest.mark.skipif(not DEMO_CSV.is_file(), reason="demo catalogue not in this checkout")
def test_demo_catalogue_reads_cleanly() -> None:
    rows, problems = read_catalog_csv(DEMO_CSV)
    assert problems == []
    assert len(rows) >= 12
    assert all(r.image.is_file() and r.title and r.group for r in rows)
    assert len({r.id for r in rows}) == len(rows)


def test_duplicate_of_a_rejected_row_is_still_a_duplicate(tmp_path: Path) -> None:
    from export.bundle.catalog import read_catalog_csv

    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,image,title\nx,missing.png,T\nx,a.png,T\n", encoding="utf-8")
    rows, problems = read_catalog_csv(csv_path)
    assert rows == []
    assert [str(p) for p in problems] == ["line 2: image not found: " + str(tmp_path / "missing.png"),
                                          "line 3: duplicate id 'x' (first on line 2)"]


def test_a_gtin_with_a_wrong_check_digit_is_a_bad_row(tmp_path: Path) -> None:
    """A barcode could never find such a product (runtime.barcode): said at build, naming the digit expected."""
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    (tmp_path / "c.csv").write_text("id,image,title,gtin\nA,a.jpg,Milk,4006381333931\nB,a.jpg,Oat,4006381333932\n"
                                    "C,a.jpg,Rye,\nD,a.jpg,Tea,12345\n", encoding="utf-8")
    rows, problems = read_catalog_csv(tmp_path / "c.csv")
    assert [row.id for row in rows] == ["A", "C"]
    assert [str(p) for p in problems] == ["line 3: gtin '4006381333932' has check digit 2, expected 1",
                                          "line 5: gtin '12345' has 5 digits, not 8, 12, 13 or 14"]
