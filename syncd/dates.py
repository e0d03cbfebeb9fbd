"""Dates written the US way, as Sell shows and exports them: "4/27/2016" is month/day/year."""

from __future__ import annotations

import re

US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")  # groups: month, day, year
