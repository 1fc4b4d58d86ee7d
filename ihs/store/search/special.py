"""Criteria that compile themselves: the parameters with a SQL shape of their own.

`_list` (lists.py), `_text` and `_content` (fulltext.py), `near` (near.py) and `_filter` (filtering.py)
are parsed by their modules into a `Special` node; the WHERE compiler (where.py) asks the node for
its condition instead of compiling it as a `Leaf`, `Chain` or `Has`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from sqlalchemy.sql.elements import ColumnElement


class Special(ABC):
    """A parsed criterion that knows its own SQL."""

    # how selective it is likely to be (where.rank: below 6 it may drive the search)
    rank: int = 8

    @abstractmethod
    def condition(self, r, types: Sequence[str] | None, driving: bool) -> ColumnElement:
        """The condition on the resources alias `r` (of `types`; None: any type); `driving`: evaluated
        once as a set rather than probed per candidate."""
