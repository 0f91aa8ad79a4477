"""Display names are cleaned before they enter a reply the brand posts."""

import pytest

from taiwa.names import clean_name, greeting_name


@pytest.mark.parametrize("raw, clean", [
    ("Shop https://evil.example", "Shop"),
    ("Deals www.cheap.example/now", "Deals"),
    ("Visit evil.example/login today", "Visit today"),
    ("@support team", "team"),
    ("Mika #giveaway", "Mika"),
    ("Gus\u202e", "Gus"),                           # a right-to-left override
    ("Ana\u200bBel", "Ana Bel"),                     # a zero-width space
    ("Line\nbreak\x00", "Line break"),
    ("ｄｅｍｏ", "demo"),                           # full-width letters read as what they are
    ("J.R.R. Tolkien", "J.R.R. Tolkien"),
    ("佐藤 花子", "佐藤 花子"),
    ("https://only.example", ""),
    ("🙂", ""),
])
def test_links_mentions_and_invisible_characters_are_removed(raw, clean):
    assert clean_name(raw) == clean


def test_a_long_name_is_cut_at_a_word_and_an_empty_one_falls_back_to_the_handle():
    assert len(clean_name("Name " * 30)) <= 40
    assert greeting_name("https://evil.example", "kim_92") == "@kim_92"
    assert greeting_name("https://evil.example", "kim_92", lang="ja") == "kim_92"
    assert greeting_name("Kim Lee", "kim_92") == "Kim Lee"
