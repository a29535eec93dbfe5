"""read_file: each supported kind of attachment, written here with its own library, read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memento.errors import ToolError
from memento.tools.files import READERS, read_file, read_file_tool


def write_pdf(path: Path, lines: list[str]) -> Path:
    """A minimal one-page PDF with Helvetica text, its xref offsets computed."""
    text_ops = " ".join(f"({line}) Tj 0 -20 Td" for line in lines)
    content = f"BT /F1 14 Tf 72 720 Td {text_ops} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def test_pdf(tmp_path):
    text = read_file(write_pdf(tmp_path / "report.pdf", ["Quarterly report", "Revenue 1234 EUR"]))
    assert "--- page 1 ---" in text
    assert "Quarterly report" in text and "Revenue 1234 EUR" in text


def test_xlsx_keeps_sheets_and_rows(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Sales"
    sheet.append(["item", "price"])
    sheet.append(["apple", 1.5])
    sheet.append(["pear", 2])
    workbook.create_sheet("Notes").append(["café ✓"])
    workbook.save(tmp_path / "sales.xlsx")
    text = read_file(tmp_path / "sales.xlsx")
    assert text == "--- sheet Sales ---\nitem,price\napple,1.5\npear,2\n\n--- sheet Notes ---\ncafé ✓\n"


def test_xls(tmp_path):
    pytest.skip("no maintained package writes .xls (xlwt is unmaintained), so no .xls can be made here; "
                "the reader is xlrd, exercised on a broken file in test_a_damaged_file_names_its_type")


def test_csv_and_text_kinds(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# Title\n\nbody ü", encoding="utf-8")
    (tmp_path / "script.py").write_text("print('hi')\n", encoding="utf-8")
    (tmp_path / "tree.xml").write_text("<root><leaf>v</leaf></root>", encoding="utf-8")
    (tmp_path / "old.txt").write_bytes("naïve".encode("cp1252"))
    assert read_file(tmp_path / "data.csv") == "a,b\n1,2\n"
    assert read_file(tmp_path / "notes.md") == "# Title\n\nbody ü"
    assert read_file(tmp_path / "script.py") == "print('hi')\n"
    assert read_file(tmp_path / "tree.xml") == "<root><leaf>v</leaf></root>"
    assert read_file(tmp_path / "old.txt") == "naïve"


def test_json_and_jsonld_are_pretty_printed(tmp_path):
    record = {"@context": "https://schema.org", "name": "Zoë", "items": [1, 2]}
    (tmp_path / "a.json").write_text(json.dumps(record), encoding="utf-8")
    (tmp_path / "a.jsonld").write_text(json.dumps(record), encoding="utf-8")
    for name in ("a.json", "a.jsonld"):
        text = read_file(tmp_path / name)
        assert json.loads(text) == record and '"name": "Zoë"' in text and "\n" in text


def test_docx_paragraphs_and_tables(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("Meeting minutes", level=1)
    document.add_paragraph("Budget approved.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([["name", "votes"], ["Ada", "7"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.save(tmp_path / "minutes.docx")
    assert read_file(tmp_path / "minutes.docx") == (
        "Meeting minutes\nBudget approved.\n--- table 1 ---\nname,votes\nAda,7\n")


def test_pptx_slides_text_and_tables(tmp_path):
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Roadmap"
    first.placeholders[1].text = "Ship v1"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Numbers"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for r, row in enumerate([["q", "n"], ["Q1", "3"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    deck.save(tmp_path / "plan.pptx")
    text = read_file(tmp_path / "plan.pptx")
    assert text == "--- slide 1 ---\nRoadmap\nShip v1\n\n--- slide 2 ---\nNumbers\nq,n\nQ1,3\n"


def test_long_text_is_truncated_with_a_note(tmp_path):
    (tmp_path / "long.txt").write_text("x" * 500)
    text = read_file(tmp_path / "long.txt", max_chars=100)
    assert text == "x" * 100 + "\n[truncated: showing 100 of 500 characters]"


def test_unknown_type_names_the_file_and_the_supported_list(tmp_path):
    (tmp_path / "movie.mp4").write_bytes(b"\x00\x00")
    with pytest.raises(ToolError) as error:
        read_file(tmp_path / "movie.mp4")
    message = str(error.value)
    assert "'movie.mp4'" in message and "'.mp4'" in message
    assert all(suffix in message for suffix in READERS)


def test_missing_file(tmp_path):
    with pytest.raises(ToolError, match="no file at"):
        read_file(tmp_path / "absent.pdf")


@pytest.mark.parametrize("name,kind", [("broken.pdf", "PDF"), ("broken.xlsx", "Excel workbook"),
                                       ("broken.xls", "Excel 97-2003 workbook"), ("broken.docx", "Word document"),
                                       ("broken.pptx", "PowerPoint presentation"), ("broken.json", "JSON"),
                                       ("binary.txt", "text")])
def test_a_damaged_file_names_its_type(tmp_path, name, kind):
    (tmp_path / name).write_bytes(b"\x00\x01 this is not what the suffix says {")
    with pytest.raises(ToolError, match=f"cannot read '{name}' as {kind}: "):
        read_file(tmp_path / name)


def test_tool_reads_inside_its_base_dir_only(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_text("attached")
    (tmp_path / "secret.txt").write_text("secret")
    tool = read_file_tool(tmp_path / "files")
    assert tool.name == "read_file"
    assert tool.invoke({"path": "a.txt"}) == "attached"
    refused = tool.invoke({"path": "../secret.txt"})
    assert refused.startswith("error: ") and "only files inside" in refused
    assert "not supported" in tool.invoke({"path": "a.exe"})
