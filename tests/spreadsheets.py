"""Reading exports as a spreadsheet program would: CSV (`;`, UTF-8 with BOM) and XLSX (openpyxl)."""
import csv
import io
from datetime import datetime

import openpyxl

from core.spreadsheet import FORMULA_PREFIXES


def csv_rows(data):
    """The rows of a CSV export, after checking what every export must be: BOM, `;`, CRLF, guarded cells."""
    assert data.startswith(b"\xef\xbb\xbf"), data[:10]
    text = data[3:].decode("utf-8")
    assert ";" in text.split("\r\n", 1)[0]
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    for row in rows:
        assert not any(cell.startswith(FORMULA_PREFIXES) for cell in row), row
    return rows


def xlsx_rows(data):
    """The first sheet's rows as the CSV writes them (dates as 21.11.2026, times as 21.11.2026 14:30).

    Also checks that no cell is a formula: text that looks like one is a string cell.
    """
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    rows = []
    for row in sheet.iter_rows():
        values = []
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
            value = cell.value
            if value is None:
                values.append("")
            elif isinstance(value, datetime):
                is_day = cell.number_format.lower() == "dd.mm.yyyy"
                values.append(f"{value:%d.%m.%Y}" if is_day else f"{value:%d.%m.%Y %H:%M}")
            elif isinstance(value, float) and value.is_integer():
                values.append(str(int(value)))
            else:
                values.append(str(value))
        rows.append(values)
    return rows


def unguarded(rows):
    """CSV rows without the `'` the writer puts in front of formula-like cells (XLSX keeps them as text instead)."""
    return [[cell[1:] if cell[:1] == "'" and cell[1:2] in FORMULA_PREFIXES else cell for cell in row] for row in rows]


def same_table(csv_data, xlsx_data):
    """The CSV and the XLSX export hold the same rows; returns the CSV rows."""
    rows = csv_rows(csv_data)
    assert xlsx_rows(xlsx_data) == unguarded(rows)
    return rows
