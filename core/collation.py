"""German alphabetical order for names (DIN 5007, variant 1), used by every list of names.

Byte order (SQLite's and a plain `sorted`) puts "Böblingen" after
"Breisgau-Hochschwarzwald", because "ö" comes after every ASCII letter.
DIN 5007-1, the order of dictionaries and directories, sorts a letter with
umlaut or accent as its base letter and "ß" as "ss", ignoring case; names
equal by that rule keep a fixed order (the plain spelling first).

PyICU would do this with ICU's full German tailoring, at the price of a C++
library to build against; pyuca has not been maintained since 2017. For
names of districts, municipalities, topics and people the one rule above is
all that differs, so it is written here.
"""
import unicodedata


def german_key(name):
    """Sort key for `name` in DIN 5007-1 order."""
    folded = (name or "").casefold()  # also "ß" -> "ss"
    base = "".join(char for char in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(char))
    return base, folded, name or ""


def sorted_by_name(items, name=lambda item: item.name):
    """`items` sorted by `name(item)` in German order."""
    return sorted(items, key=lambda item: german_key(name(item)))
