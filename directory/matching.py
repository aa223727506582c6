"""Finding a municipality of one district from what a person typed: an AGS or a name.

Coordinators' spreadsheets hold names the way people write them, not the
official ones: "sindelfingen" for "Sindelfingen, Stadt", "Boeblingen" for
"Böblingen, Stadt". The rule, in one place:

* 8 digits (or 7, when a spreadsheet dropped the leading zero) are an AGS;
* a name is compared after `normalize`: case, the designation after the
  last comma (", Stadt", ", Große Kreisstadt", …), umlaut spelling (ä/ae,
  ö/oe, ü/ue, ß/ss), hyphens and whitespace do not matter;
* the official name without its designation and the full name both match;
  a name written with its designation ("Böblingen, Stadt") is first looked
  up as a whole official name, so it tells "Böblingen" and "Böblingen,
  Stadt" apart, where "Boeblingen" alone is ambiguous;
* exactly one municipality must match; two or more is ambiguous, none is
  unknown, and both come with the closest candidates (difflib on the
  normalised names) so a person can correct the row.

Only the municipalities passed in are searched: callers pass those of the
district the person works in, so another district's AGS or name is unknown.
"""
import difflib
import re
import unicodedata
from dataclasses import dataclass, field

FOUND, AMBIGUOUS, UNKNOWN, EMPTY = "found", "ambiguous", "unknown", "empty"
MAX_CANDIDATES = 3
CANDIDATE_CUTOFF = 0.6
UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
DIGITS = re.compile(r"[0-9]{7,8}")


def normalize(name):
    """The key a name is compared by: "Sindelfingen, Stadt" and " SINDELFINGEN " give "sindelfingen"."""
    text = unicodedata.normalize("NFC", str(name)).casefold()
    if "," in text:
        text = text.rsplit(",", 1)[0]  # the designation: ", Stadt", ", Universitätsstadt", …
    return full_key(text)


def full_key(name):
    """The whole name compared the same way, designation included: "Böblingen, Stadt" → "boeblingen stadt"."""
    text = unicodedata.normalize("NFC", str(name)).casefold().translate(UMLAUTS)
    return " ".join(text.replace("-", " ").replace(",", " ").split())


@dataclass
class Match:
    status: str
    municipality: object = None
    candidates: list = field(default_factory=list)  # closest municipalities, best first

    @property
    def found(self):
        return self.status == FOUND


class MunicipalityMatcher:
    """Matches names and AGS against the municipalities given (those of one district); build once per file."""

    def __init__(self, municipalities):
        self.by_ags = {}
        self.by_full = {}  # the whole official name: decides between "Böblingen" and "Böblingen, Stadt"
        self.by_key = {}  # the name without its designation, and the whole name
        for municipality in municipalities:
            self.by_ags[municipality.ags] = municipality
            self.by_full.setdefault(full_key(municipality.name), []).append(municipality)
            for key in {normalize(municipality.name), full_key(municipality.name)}:
                self.by_key.setdefault(key, []).append(municipality)

    def match(self, text):
        text = " ".join(str(text or "").split())
        if not text:
            return Match(EMPTY)
        code = text.replace(" ", "")
        if DIGITS.fullmatch(code):
            code = code.zfill(8)
            found = self.by_ags.get(code)
            return Match(FOUND, found) if found else Match(UNKNOWN)
        whole = self.by_full.get(full_key(text), []) if "," in text else []
        if len(whole) == 1:  # written with its designation: the official name decides
            return Match(FOUND, whole[0])
        key = normalize(text)
        found = list({m.ags: m for m in self.by_key.get(key, []) + self.by_key.get(full_key(text), [])}.values())
        if len(found) == 1:
            return Match(FOUND, found[0])
        if found:
            return Match(AMBIGUOUS, candidates=sorted(found, key=lambda m: m.name))
        return Match(UNKNOWN, candidates=self.candidates(key))

    def candidates(self, key):
        close = difflib.get_close_matches(key, self.by_key, n=MAX_CANDIDATES * 2, cutoff=CANDIDATE_CUTOFF)
        result = []
        for name in close:
            for municipality in self.by_key[name]:
                if municipality not in result:
                    result.append(municipality)
        return result[:MAX_CANDIDATES]


def match_municipality(text, municipalities):
    """One lookup; for many, build a `MunicipalityMatcher` once."""
    return MunicipalityMatcher(municipalities).match(text)
