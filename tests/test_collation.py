"""German order of names (core/collation.py, DIN 5007-1) in the lists users see."""
import re

from core.collation import german_key, sorted_by_name


def test_umlauts_sort_as_their_base_letter_and_sharp_s_as_ss():
    names = ["Breisgau-Hochschwarzwald", "Böblingen", "Bodenseekreis", "Biberach", "Überlingen", "Ulm",
             "Straße", "Strasse", "Stuttgart", "Ärzte", "Abstatt", "öhringen"]
    assert sorted(names, key=german_key) == [
        "Abstatt", "Ärzte", "Biberach", "Böblingen", "Bodenseekreis", "Breisgau-Hochschwarzwald", "öhringen",
        "Strasse", "Straße", "Stuttgart", "Überlingen", "Ulm",
    ]
    assert sorted(["b", "B", "a"], key=german_key) == ["a", "B", "b"]  # case ignored, then a fixed order


def test_sorted_by_name_takes_any_name():
    assert sorted_by_name([("x", "Öhringen"), ("y", "Offenburg")], lambda row: row[1])[0][1] == "Offenburg"


def test_the_district_list_is_in_german_order(client, make_district, make_user, sign_in):
    for key, name in (("08315", "Breisgau-Hochschwarzwald"), ("08115", "Böblingen"), ("08435", "Bodenseekreis")):
        make_district(key=key, name=name)
    sign_in(make_user("admin@lrabb.de", role="admin", districts=()))
    page = client.get("/districts").get_data(as_text=True)
    listed = re.findall(r'<th scope="row"><a href="/d/\d+/">([^<]+)</a></th>', page)
    assert listed == ["Böblingen", "Bodenseekreis", "Breisgau-Hochschwarzwald"]
