"""Tables for spreadsheets: every export of the service as CSV (for German Excel) and XLSX.

One writer for all exports, so they read alike:

* CSV: `;` as separator, UTF-8 with BOM (German Excel reads umlauts only
  then), CRLF line ends; a cell a spreadsheet would run as a formula (it
  starts with = + - @ tab or CR) gets a leading `'` and stays text;
* XLSX (XlsxWriter): strings are always written as text, never as formulas
  or links, numbers stay numbers, dates and times are real dates;
* dates as 21.11.2026, times in Europe/Berlin as 21.11.2026 14:30 (an aware
  datetime is converted; a naive one is taken as UTC, as the database keeps
  it).

A table is a header (list of str) and rows (lists of cells); a cell is
str, int, float, `Share` (a fraction shown as percent), date, datetime,
bool (ja/nein) or None (empty). Headers and labels are German in every
locale: the files are exchanged between offices and read back by the
imports, so they do not change with the language of whoever downloads them.
"""
import csv
import io
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import xlsxwriter
from flask import Response

# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DELIMITER = ";"  # what German Excel expects
UTF8_BOM = b"\xef\xbb\xbf"
BERLIN = ZoneInfo("Europe/Berlin")
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")


class Share(float):
    """A fraction (0.25) that a spreadsheet shows as percent (25,0 %)."""


def guard_formula(value):
    """A cell a spreadsheet would run as a formula gets a leading `'` and stays text."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def berlin(value):
    """An aware or naive-UTC datetime as a naive Europe/Berlin one."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(BERLIN).replace(tzinfo=None)


def date_text(value):
    return f"{value:%d.%m.%Y}" if value else ""


def stamp_text(value):
    """21.11.2026 14:30 in Europe/Berlin."""
    return f"{berlin(value):%d.%m.%Y %H:%M}" if value else ""


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, datetime):
        return stamp_text(value)
    if isinstance(value, date):
        return date_text(value)
    if isinstance(value, Share):
        return f"{value * 100:.1f}".replace(".", ",")
    if isinstance(value, float):
        return f"{value}".replace(".", ",")
    return guard_formula(str(value))


def to_csv(header, rows):
    """The table as CSV bytes: `;`, UTF-8 with BOM, CRLF, guarded cells."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=DELIMITER, lineterminator="\r\n")
    writer.writerow([csv_cell(value) for value in header])
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return UTF8_BOM + out.getvalue().encode("utf-8")


def to_xlsx(header, rows, sheet_title, description=(), widths=None, frozen_columns=0, notes_title="Erläuterung"):
    """The table as XLSX bytes: one sheet with the table and, when `description` is given, one with those lines."""
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False, "strings_to_numbers": False})
    bold = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    formats = {
        "day": workbook.add_format({"num_format": "dd.mm.yyyy"}),
        "stamp": workbook.add_format({"num_format": "dd.mm.yyyy hh:mm"}),
        "percent": workbook.add_format({"num_format": "0.0%"}),
    }
    sheet = workbook.add_worksheet(sheet_title[:31])
    sheet.write_row(0, 0, [str(value) for value in header], bold)
    sheet.freeze_panes(1, frozen_columns)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            _write_cell(sheet, r, c, value, formats)
    for column, width in enumerate(widths or [18] * len(header)):
        sheet.set_column(column, column, width)
    if header:
        sheet.autofilter(0, 0, len(rows), len(header) - 1)
    if description:
        notes = workbook.add_worksheet(notes_title[:31])
        notes.set_column(0, 0, 120)
        for r, line in enumerate(description):
            notes.write_string(r, 0, str(line), bold if r == 0 else None)
    workbook.close()
    return out.getvalue()


def _write_cell(sheet, r, c, value, formats):
    if value is None:
        sheet.write_blank(r, c, None)
    elif isinstance(value, bool):
        sheet.write_string(r, c, "ja" if value else "nein")
    elif isinstance(value, datetime):
        sheet.write_datetime(r, c, berlin(value), formats["stamp"])
    elif isinstance(value, date):
        sheet.write_datetime(r, c, value, formats["day"])
    elif isinstance(value, Share):
        sheet.write_number(r, c, value, formats["percent"])
    elif isinstance(value, (int, float)):
        sheet.write_number(r, c, value)
    else:
        sheet.write_string(r, c, str(value))  # text, never a formula or a link


def table_bytes(extension, header, rows, sheet_title, **xlsx_options):
    """(bytes, content type) of the table in the format named by `extension` ("csv" or "xlsx")."""
    if extension == "xlsx":
        return to_xlsx(header, rows, sheet_title, **xlsx_options), XLSX_TYPE
    return to_csv(header, rows), CSV_TYPE


def download(data, content_type, filename):
    """An attachment response that no cache keeps (exports hold personal data or unpublished figures)."""
    response = Response(data)
    response.headers["Content-Type"] = content_type
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def table_download(extension, header, rows, sheet_title, stem, **xlsx_options):
    data, content_type = table_bytes(extension, header, rows, sheet_title, **xlsx_options)
    return download(data, content_type, f"{stem}.{extension}")
