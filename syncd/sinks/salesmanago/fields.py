"""The SALESmanago contact fields syncd can write, as `syncd fields` lists them.

SALESmanago has no field-list endpoint: the contact's fields are fixed, and its contact details (`properties`) and
dictionary properties (NUMBER, DATE) are free-form — any name may be written, so they are listed as patterns.
The keys are the targets of `[sinks.salesmanago.fields]` (see salesmanago/targets.py).
"""

from __future__ import annotations

from syncd.sinks.base import DestinationField
from syncd.sinks.salesmanago.targets import STATES

FIELDS: tuple[DestinationField, ...] = (
    DestinationField("contact.email", "E-mail (identifies the contact; always the Sell e-mail)", "email", False),
    DestinationField("contact.name", "Name", "text", True),
    DestinationField("contact.phone", "Phone", "phone", True),
    DestinationField("contact.fax", "Fax", "phone", True),
    DestinationField("contact.company", "Company", "text", True),
    DestinationField("contact.state", "Contact state", "list", True, {state: state.title() for state in STATES}),
    DestinationField(
        "contact.externalId", "External id (syncd writes sell-lead-<id> / sell-contact-<id>)", "text", True
    ),
    DestinationField("address.streetAddress", "Street address", "text", True),
    DestinationField("address.zipCode", "Zip code", "text", True),
    DestinationField("address.city", "City", "text", True),
    DestinationField("address.country", "Country (ISO 3166-1 alpha-2)", "country", True),
    DestinationField("province", "Province / state", "text", True),
    DestinationField("birthday", "Birthday (yyyyMMdd or MMdd)", "date", True),
    DestinationField("tags", "Tags (added; free-form names, shown upper-case)", "tags", True),
    DestinationField("property.<name>", "Contact detail (free-form: any name; text)", "text", True),
    DestinationField("number.<name>", "Dictionary property, NUMBER (free-form: any name)", "numeric", True),
    DestinationField("date.<name>", "Dictionary property, DATE (free-form: any name)", "date", True),
)
