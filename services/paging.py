"""One page of a long listing (the catalog, the job list), and the arithmetic of pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.page_size)


def page_count(total: int, page_size: int) -> int:
    return max(1, -(-total // page_size))


def clamp_page(page: int, total: int, page_size: int) -> int:
    """``page`` within 1 and the last page (a link to page 9 of a list that shrank to 3)."""
    return max(1, min(page, page_count(total, page_size)))
