"""Free-text countries and states, as typed in Sell, to ISO 3166 codes (pycountry plus a small alias table). Pure.

Sell stores an address's country and state as whatever the user typed ("Deutschland", "UK", "U.S.A.", "Calif.").
Both destinations want codes: SALESmanago and Ontraport an ISO 3166-1 alpha-2 country, Ontraport a state code.

- `country_code(text)`: the alpha-2 code, or None when the text names no country syncd knows. Matching ignores case,
  accents, dots, a leading "the" and surrounding blanks; it tries the alias table (native and short names pycountry
  does not carry), then pycountry (alpha-2, alpha-3, numeric, name, official and common names).
- `state_code(country, text)`: the subdivision code without its country prefix ("California" → "CA", "Quebec" →
  "QC", "New South Wales" → "NSW"), or None when the text names no subdivision of that country. Without a country
  the United States, Canada and Australia are searched, and a code is returned only when they agree on it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import pycountry

# Text (compared as `_fold` folds it) → alpha-2: names and abbreviations people type that pycountry does not resolve.
COUNTRY_ALIASES: dict[str, str] = {
    # United Kingdom
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    # United States
    "us": "US",
    "usa": "US",
    "america": "US",
    "united states of america": "US",
    "estados unidos": "US",
    "etats-unis": "US",
    # Europe, native names
    "deutschland": "DE",
    "bundesrepublik deutschland": "DE",
    "polska": "PL",
    "rzeczpospolita polska": "PL",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "espana": "ES",
    "italia": "IT",
    "nederland": "NL",
    "holland": "NL",
    "belgie": "BE",
    "belgique": "BE",
    "belgien": "BE",
    "cesko": "CZ",
    "ceska republika": "CZ",
    "slovensko": "SK",
    "magyarorszag": "HU",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "eire": "IE",
    "hellas": "GR",
    "ellada": "GR",
    "hrvatska": "HR",
    "slovenija": "SI",
    "lietuva": "LT",
    "latvija": "LV",
    "eesti": "EE",
    "turkey": "TR",
    "turkiye": "TR",
    "russia": "RU",
    "rossiya": "RU",
    "россия": "RU",
    "ukraina": "UA",
    "украина": "UA",
    "україна": "UA",
    "macedonia": "MK",
    "moldavia": "MD",
    "vatican": "VA",
    "vatican city": "VA",
    # elsewhere
    "brasil": "BR",
    "mexique": "MX",
    "south korea": "KR",
    "korea": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "ivory coast": "CI",
    "cote d'ivoire": "CI",
    "uae": "AE",
    "emirates": "AE",
    "burma": "MM",
    "swaziland": "SZ",
    "cape verde": "CV",
    "east timor": "TL",
    "prc": "CN",
    "people's republic of china": "CN",
    "republic of china": "TW",
    "nippon": "JP",
    "nihon": "JP",
}

# Where a state without a country is looked for (the countries whose states people write without one).
STATE_COUNTRIES = ("US", "CA", "AU")

# Common abbreviations pycountry does not carry, per country: text (folded) → subdivision code suffix.
STATE_ALIASES: dict[str, dict[str, str]] = {
    "US": {"calif": "CA", "mass": "MA", "wash": "WA", "penn": "PA", "fla": "FL", "tex": "TX"},
    "CA": {"que": "QC", "pq": "QC", "nfld": "NL"},
    "AU": {"vic": "VIC", "qld": "QLD", "tas": "TAS"},
}

_BLANKS = re.compile(r"\s+")


def _fold(text: str) -> str:
    """Text compared without case, accents, dots, commas, curly apostrophes, a leading "the" or extra blanks."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = plain.replace("\u2019", "'").replace("`", "'").replace(".", " ").replace(",", " ")
    plain = _BLANKS.sub(" ", plain).strip()
    return plain.removeprefix("the ")


def _fold_compact(text: str) -> str:
    """`_fold` with the blanks between single letters dropped ("u s a" → "usa", "d c" → "dc")."""
    folded = _fold(text)
    parts = folded.split(" ")
    return "".join(parts) if all(len(part) == 1 for part in parts) else folded


@cache
def _aliases() -> dict[str, str]:
    return {_fold_compact(alias): code for alias, code in COUNTRY_ALIASES.items()}


@cache
def _country_names() -> dict[str, str]:
    """Every pycountry name of every country, folded, → alpha-2 (the accent-insensitive twin of lookup())."""
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            value = getattr(country, attribute, None)
            if isinstance(value, str):
                names.setdefault(_fold(value), country.alpha_2)
    return names


def country_code(text: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of a free-text country ("Deutschland" → "DE"); None when unknown."""
    if not text or not text.strip():
        return None
    folded = _fold_compact(text)
    known = _aliases().get(folded) or _country_names().get(folded)
    if known is not None:
        return known
    for candidate in dict.fromkeys((text.strip(), folded)):
        try:
            return str(pycountry.countries.lookup(candidate).alpha_2)
        except LookupError:
            continue
    return None


@cache
def _subdivisions(country: str) -> dict[str, str]:
    """Folded code suffixes and names of a country's subdivisions → code suffix (top-level ones win a tie)."""
    found = [sub for sub in pycountry.subdivisions if sub.country_code == country]
    ordered = sorted(found, key=lambda sub: (sub.parent_code is not None, sub.code))
    table: dict[str, str] = {}
    for sub in ordered:
        suffix = str(sub.code).split("-", 1)[1]
        table.setdefault(_fold(suffix), suffix)
    for sub in ordered:
        suffix = str(sub.code).split("-", 1)[1]
        table.setdefault(_fold(str(sub.name)), suffix)
    for alias, suffix in STATE_ALIASES.get(country, {}).items():
        table.setdefault(_fold(alias), suffix)
    return table


def _state_in(country: str, text: str) -> str | None:
    table = _subdivisions(country)
    return table.get(_fold(text)) or table.get(_fold_compact(text))


def state_code(country_code: str | None, text: str) -> str | None:
    """The subdivision code, without its country prefix, of a free-text state ("Ontario" → "ON"); None when the
    text names no subdivision of `country_code` (or, without a country, no single code in the US, CA and AU)."""
    if not text or not text.strip():
        return None
    if country_code:
        return _state_in(country_code.strip().upper(), text)
    codes = {code for country in STATE_COUNTRIES if (code := _state_in(country, text)) is not None}
    return codes.pop() if len(codes) == 1 else None
