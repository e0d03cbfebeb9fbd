"""Mapping drift: what the configuration names that no longer exists where it should (a Sell custom field or stage
renamed or deleted, a destination field or product gone), kept per finder (`scope`) so `syncd status` and `check`
in another process see what the daemon and its writers found."""

from __future__ import annotations

from collections.abc import Mapping

import aiosqlite

from state.base import StoreBase
from state.rows import DriftRow


async def read_drift(db: aiosqlite.Connection) -> list[DriftRow]:
    """Every drift found, by scope and subject (also from a read-only connection)."""
    async with db.execute("SELECT scope, subject, problem, since FROM drift ORDER BY scope, subject") as cur:
        return [
            DriftRow(str(scope), str(subject), str(problem), float(since))
            async for scope, subject, problem, since in cur
        ]


class Drift(StoreBase):
    """Recording and reading mapping drift."""

    async def drift(self) -> list[DriftRow]:
        async with self.reading() as db:
            return await read_drift(db)

    async def set_drift(self, scope: str, problems: Mapping[str, str]) -> None:
        """Everything `scope` finds now (subject -> problem): the rest of its drift is resolved. A subject that
        drifted before keeps its `since`."""
        now = self._clock()
        async with self.transaction() as db:
            subjects = list(problems)
            marks = ",".join("?" * len(subjects))
            await db.execute(
                f"DELETE FROM drift WHERE scope = ? AND subject NOT IN ({marks})"
                if subjects
                else "DELETE FROM drift WHERE scope = ?",
                (scope, *subjects),
            )
            await db.executemany(
                "INSERT INTO drift (scope, subject, problem, since) VALUES (?,?,?,?)"
                " ON CONFLICT (scope, subject) DO UPDATE SET problem = excluded.problem",
                [(scope, subject, problem, now) for subject, problem in problems.items()],
            )

    async def report_drift(self, scope: str, subject: str, problem: str | None) -> None:
        """One subject of `scope` drifted (`problem`), or is fine again (None)."""
        async with self.transaction() as db:
            if problem is None:
                await db.execute("DELETE FROM drift WHERE scope = ? AND subject = ?", (scope, subject))
            else:
                await db.execute(
                    "INSERT INTO drift (scope, subject, problem, since) VALUES (?,?,?,?)"
                    " ON CONFLICT (scope, subject) DO UPDATE SET problem = excluded.problem",
                    (scope, subject, problem, self._clock()),
                )
