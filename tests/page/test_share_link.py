"""The share link, written for every view, against urllib's urlencode of the same fields."""

from urllib.parse import parse_qsl, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from xlm_demo.page.state import Chosen, PageState

# Any text a person can type or paste: every character but lone surrogates (a page cannot send those).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(prompt=TEXT, literal=st.booleans(), appended=st.lists(st.integers(0, 64698), max_size=4))
def test_the_link_is_urlencodes(prompt, literal, appended):
    state = PageState(prompt, "en", 10, literal=literal, chosen=tuple(Chosen(i, "de") for i in appended))
    expected = {"prompt": prompt, "lang": "en", "top_k": 10}
    if literal:
        expected["literal_specials"] = 1
    if appended:
        expected |= {"ids": ",".join(map(str, appended)), "langs": ",".join(["de"] * len(appended))}
    query = state.share_query()
    assert query == "?" + urlencode(expected)
    assert dict(parse_qsl(query[1:], keep_blank_values=True))["prompt"] == prompt
