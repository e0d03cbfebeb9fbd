"""Free-text countries and states to ISO 3166 codes (syncd.sinks.countries)."""

from __future__ import annotations

import pytest

from syncd.sinks.countries import COUNTRY_ALIASES, country_code, state_code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # what pycountry knows: codes, names, official and common names, any case
        ("PL", "PL"),
        ("pl", "PL"),
        ("POL", "PL"),
        ("Poland", "PL"),
        ("poland", "PL"),
        ("United Kingdom", "GB"),
        ("Germany", "DE"),
        ("Czechia", "CZ"),
        ("Czech Republic", "CZ"),
        ("Korea, Republic of", "KR"),
        ("Türkiye", "TR"),
        # accents and punctuation do not matter
        ("Osterreich", "AT"),
        ("Österreich", "AT"),
        ("España", "ES"),
        ("Espana", "ES"),
        ("méxico", "MX"),
        ("Côte d’Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        # native and short names from the alias table
        ("Deutschland", "DE"),
        ("Polska", "PL"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("us", "US"),
        ("United States of America", "US"),
        ("Holland", "NL"),
        ("the Netherlands", "NL"),
        ("Nederland", "NL"),
        ("Schweiz", "CH"),
        ("Turkey", "TR"),
        ("Russia", "RU"),
        ("Россия", "RU"),
        ("Україна", "UA"),
        ("Brasil", "BR"),
        ("South Korea", "KR"),
        ("Ivory Coast", "CI"),
        # blanks around and inside
        ("  Poland  ", "PL"),
        ("United   Kingdom", "GB"),
        # nothing, or no country at all
        ("", None),
        ("   ", None),
        ("Narnia", None),
        ("Springfield", None),
    ],
)
def test_country_code(text: str, expected: str | None) -> None:
    """A free-text country becomes its ISO 3166-1 alpha-2 code, or None when it names no known country."""
    assert country_code(text) == expected


def test_every_alias_names_a_real_country() -> None:
    """Each alias resolves to itself through country_code and points at an ISO code pycountry knows."""
    for alias, code in COUNTRY_ALIASES.items():
        assert country_code(alias) == code, alias
        assert country_code(code) == code, alias


@pytest.mark.parametrize(
    ("country", "text", "expected"),
    [
        ("US", "California", "CA"),
        ("US", "california", "CA"),
        ("US", "CA", "CA"),
        ("US", "ny", "NY"),
        ("us", "New York", "NY"),
        ("US", "Calif.", "CA"),
        ("US", "D.C.", "DC"),
        ("US", "District of Columbia", "DC"),
        ("CA", "Quebec", "QC"),
        ("CA", "Québec", "QC"),
        ("CA", "Ontario", "ON"),
        ("CA", "BC", "BC"),
        ("AU", "New South Wales", "NSW"),
        ("AU", "nsw", "NSW"),
        ("AU", "Western Australia", "WA"),
        ("GB", "England", "ENG"),
        # a known state of another country is not a state of this one
        ("US", "Ontario", None),
        ("CA", "Texas", None),
        ("US", "Narnia", None),
        ("US", "", None),
        ("ZZ", "California", None),
        # without a country: the US, Canada and Australia, when they agree
        (None, "Texas", "TX"),
        (None, "Ontario", "ON"),
        (None, "NSW", "NSW"),
        (None, "WA", "WA"),  # Washington and Western Australia share the code
        (None, "Narnia", None),
        (None, "", None),
    ],
)
def test_state_code(country: str | None, text: str, expected: str | None) -> None:
    """A free-text state becomes its subdivision code without the country prefix, or None when unknown."""
    assert state_code(country, text) == expected
