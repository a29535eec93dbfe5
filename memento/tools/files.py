"""Read an attached file (GAIA's kinds: pdf, spreadsheets, office documents, text) as text for an LLM."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Callable, Iterable

from pydantic import BaseModel, Field

from memento.errors import ToolError
from memento.tools._common import make_tool, truncate


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ValueError("it holds NUL bytes, so it is binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # the usual encoding of non-UTF-8 office exports


def _read_json(path: Path) -> str:
    return json.dumps(json.loads(_read_text(path)), indent=1, ensure_ascii=False)


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader

    pages = PdfReader(path).pages
    return "\n\n".join(f"--- page {n} ---\n{page.extract_text() or ''}" for n, page in enumerate(pages, 1))


def _csv_lines(rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        cells = ["" if cell is None else cell for cell in row]
        if any(cell != "" for cell in cells):
            writer.writerow(cells)
    return out.getvalue()


def _read_xlsx(path: Path) -> str:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return "\n".join(f"--- sheet {sheet.title} ---\n{_csv_lines(sheet.iter_rows(values_only=True))}"
                         for sheet in workbook.worksheets)
    finally:
        workbook.close()


def _read_xls(path: Path) -> str:
    import xlrd

    book = xlrd.open_workbook(str(path))
    return "\n".join(f"--- sheet {sheet.name} ---\n"
                     f"{_csv_lines(sheet.row_values(r) for r in range(sheet.nrows))}"
                     for sheet in book.sheets())


def _read_docx(path: Path) -> str:
    import docx

    document = docx.Document(str(path))
    parts = [paragraph.text for paragraph in document.paragraphs if paragraph.text.strip()]
    for n, table in enumerate(document.tables, 1):
        parts.append(f"--- table {n} ---\n" + _csv_lines([cell.text for cell in row.cells] for row in table.rows))
    return "\n".join(parts)


def _read_pptx(path: Path) -> str:
    from pptx import Presentation

    slides = []
    for n, slide in enumerate(Presentation(str(path)).slides, 1):
        texts = []
        for shape in slide.shapes:
            if shape.has_text_frame and shape.text_frame.text.strip():
                texts.append(shape.text_frame.text)
            elif shape.has_table:
                texts.append(_csv_lines([cell.text for cell in row.cells] for row in shape.table.rows))
        slides.append(f"--- slide {n} ---\n" + "\n".join(texts))
    return "\n\n".join(slides)


READERS: dict[str, tuple[str, Callable[[Path], str]]] = {
    ".pdf": ("PDF", _read_pdf),
    ".xlsx": ("Excel workbook", _read_xlsx),
    ".xlsm": ("Excel workbook", _read_xlsx),
    ".xls": ("Excel 97-2003 workbook", _read_xls),
    ".csv": ("CSV", _read_text),
    ".tsv": ("TSV", _read_text),
    ".docx": ("Word document", _read_docx),
    ".pptx": ("PowerPoint presentation", _read_pptx),
    ".json": ("JSON", _read_json),
    ".jsonld": ("JSON-LD", _read_json),
    ".txt": ("text", _read_text),
    ".md": ("Markdown", _read_text),
    ".xml": ("XML", _read_text),
    ".py": ("Python source", _read_text),
}
"""File suffix -> (what it is, reader returning the whole text)."""

SUPPORTED = ", ".join(sorted(READERS))


def read_file(path: str | os.PathLike, *, max_chars: int = 20_000) -> str:
    """The text of the file at `path`, cut to `max_chars` with a note; ToolError if it cannot be read."""
    path = Path(path)
    kind_and_reader = READERS.get(path.suffix.lower())
    if kind_and_reader is None:
        raise ToolError(f"cannot read {path.name!r}: files of type {path.suffix or '(no suffix)'!r} "
                        f"are not supported; supported types: {SUPPORTED}")
    if not path.is_file():
        raise ToolError(f"cannot read {path.name!r}: there is no file at {str(path)!r}; check the path")
    kind, reader = kind_and_reader
    try:
        text = reader(path)
    except Exception as error:  # each library raises its own errors for a broken file
        raise ToolError(f"cannot read {path.name!r} as {kind}: {type(error).__name__}: {error}; "
                        "the file may be damaged or not really of that type") from error
    return truncate(text, max_chars)[0]


def read_file_tool(base_dir: str | os.PathLike | None = None, *, max_chars: int = 20_000):
    """The `read_file` LangChain tool; with `base_dir`, relative paths start there and none may leave it."""
    base = Path(base_dir).resolve() if base_dir else None

    class ReadFileArgs(BaseModel):
        path: str = Field(description="Path of the attached file to read.")

    def run(path: str) -> str:
        target = Path(path)
        if base is not None:
            target = (base / target).resolve()
            if not target.is_relative_to(base):
                raise ToolError(f"cannot read {path!r}: only files inside {str(base)!r} can be read")
        return read_file(target, max_chars=max_chars)

    return make_tool(run, name="read_file", args_schema=ReadFileArgs,
                     description=f"Read an attached file as text. Supported types: {SUPPORTED}.")
