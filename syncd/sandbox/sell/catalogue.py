"""The fixed material the Sell history generator draws from: names, places, tags, custom fields, a pipeline.

Deliberately international (Sell accounts are): unicode names, free-text countries as people type them, and people
without an e-mail. Everything here is plain data; `syncd.sandbox.sell.history` makes records of it.
"""

from __future__ import annotations

import unicodedata
from typing import Final

# fmt: off
FIRST_NAMES: Final = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Edsger", "Barbara", "Donald", "Frances", "Ken",
    "Łukasz", "Małgorzata", "Zoë", "José", "Søren", "Ægir", "Jürgen", "Élodie", "Chloé", "Đorđe",
    "Ağca", "Nuño", "Björk", "François", "Krzysztof", "Agnieszka", "Ines", "Paweł", "Siobhán", "Ólafur",
    "Mateusz", "Wojciech", "Hanna", "Yuki", "Zsófia", "Ümit", "Renée", "Dagný", "Ørjan", "Štěpán",
)
LAST_NAMES: Final = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
    "Wiśniewski", "Żółkiewska", "Müller", "García", "Kierkegaard", "Þórsson", "Straße", "Lefèvre", "Dubois", "Đoković",
    "Çelik", "Muñoz", "Guðmundsdóttir", "Nowak", "Kowalczyk", "Brzęczyszczykiewicz", "O'Brien", "Dvořák", "Håkansson",
    "Szabó", "Yılmaz", "Nguyễn", "Smith", "Jones", "Schmidt", "Rossi", "Novák", "Jensen", "de la Cruz", "van der Berg",
)
COMPANIES: Final = (
    "Acme sp. z o.o.", "Globex GmbH", "Initech Ltd", "Umbrella S.A.", "Hooli Inc.", "Vandelay Industries",
    "Żabka Polska", "Café Müller KG", "Ørsted Consulting ApS", "Société Générale de Test", "Stark Industries",
    "Wayne Enterprises", "Łódź Logistics", "Smørrebrød A/S", "Cyberdyne Systems", "Tyrell Corp.",
)
DOMAINS: Final = ("example.org", "example.com", "example.net", "mail.example.pl", "firma.example.de")
# Free text, as typed into Sell by people in many countries (and sometimes left empty).
COUNTRIES: Final = (
    "Poland", "Polska", "United Kingdom", "UK", "Deutschland", "Germany", "USA", "United States", "France",
    "España", "Nederland", "Italia", "Czech Republic", "Česko", "Danmark", "Ireland", "",
)
CITIES: Final = (
    "Warszawa", "Kraków", "Łódź", "London", "Berlin", "München", "New York", "Paris", "Madrid", "Amsterdam",
    "Roma", "Praha", "København", "Dublin", "Gdańsk",
)
STREETS: Final = ("Marszałkowska", "Baker Street", "Unter den Linden", "Main St", "Rue de Rivoli", "Gran Vía")
STATES: Final = ("", "", "mazowieckie", "NY", "CA", "Bayern", "Île-de-France")
TITLES: Final = ("CEO", "CTO", "Head of Sales", "Marketing Manager", "Buyer", "Kierownik zakupów", "Prokurist", "")
INDUSTRIES: Final = ("Software", "Retail", "Logistics", "Manufacturing", "Healthcare", "Finance", "Education", "")
LEAD_STATUSES: Final = ("New", "Working", "Unqualified")
TAGS: Final = ("vip", "newsletter", "webinar-2024", "partner", "trade-show", "zainteresowany", "Überprüfen", "cold")
NOTES: Final = (
    "Called, left a voicemail.",
    "Interested in the annual plan; send a quote.",
    "Spotkanie w przyszły wtorek o 10:00.",
    "Bitte Angebot bis Freitag schicken.",
    "Met at the trade show ☕ — follow up in Q3.",
    "Asked for a discount of 10 %.",
    "Décision attendue fin du mois.",
)
PRODUCTS: Final = (
    ("Starter licence", "LIC-START", "99.00"),
    ("Pro licence", "LIC-PRO", "249.00"),
    ("Onboarding workshop", "SRV-ONB", "1200.00"),
    ("Support, 12 months", "SRV-SUP-12", "480.00"),
    ("Żurek export pack", "EXP-ZUR", "15.50"),
)
CURRENCIES: Final = ("EUR", "USD", "PLN", "GBP")
# fmt: on
OWNERS: Final = (101, 102, 103, 104)
LOSS_REASONS: Final = (11, 12, 13)

# One custom field of every Sell value type, per resource that has custom fields.
CUSTOM_TYPES: Final = (
    ("Newsletter consent", "bool"),
    ("Budget", "number"),
    ("First contact", "date"),
    ("Demo at", "datetime"),
    ("Tier", "list"),
    ("Interests", "multi_select_list"),
    ("Office", "address"),
    ("Billing e-mail", "email"),
    ("Assistant phone", "phone"),
    ("Referral code", "string"),
    ("Background", "text"),
    ("Portfolio", "url"),
)
DEAL_CUSTOM_TYPES: Final = (
    ("Contract signed", "bool"),
    ("Seats", "number"),
    ("Go-live", "date"),
    ("Kick-off at", "datetime"),
    ("Plan", "list"),
    ("Modules", "multi_select_list"),
    ("Delivery address", "address"),
    ("PO reference", "string"),
)
OPTIONS: Final = {
    "list": ("Gold", "Silver", "Bronze", "Złoty"),
    "multi_select_list": ("CRM", "E-mail", "SMS", "Web push", "Automatyzacja"),
}

# The pipeline: (name, category, likelihood)
STAGES: Final = (
    ("Incoming", "incoming", 10),
    ("Qualified", "qualified", 30),
    ("Quote", "qualified", 60),
    ("Won", "won", 100),
    ("Lost", "lost", 0),
)
SOURCES: Final = (("Website", "lead"), ("Referral", "lead"), ("Trade show", "deal"), ("Cold call", "deal"))

_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ß": "ss", "đ": "d",
                       "Đ": "D", "þ": "th", "Þ": "Th", "ð": "d", "ı": "i", "'": "", " ": ""})  # fmt: skip


def slug(text: str) -> str:
    """An ASCII, lower-case e-mail local part from a unicode name ("Łukasz" -> "lukasz")."""
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD)).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch in ".-") or "user"
