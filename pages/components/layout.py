"""Page furniture: the header every page starts with and the sidebar's account box."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import streamlit as st

from pages.components.formatting import role_labels
from pages.components.navigation import SPECS_BY_KEY


def page_header(key: str) -> None:
    spec = SPECS_BY_KEY[key]
    st.title(spec.title, anchor=False)
    st.caption(spec.caption)


def not_available_yet(what: str, issue: int, bullets: list[str]) -> None:
    """An honest placeholder for a capability that has not landed yet."""
    st.info(
        f"**{what} is not available yet.** It arrives with issue #{issue}. "
        "Nothing on this page works until then.",
        icon=":material/construction:",
    )
    st.markdown("What it will let you do:\n" + "\n".join(f"- {b}" for b in bullets))


def account_summary(display_name: str, username: str, roles: list[str], team: str | None) -> None:
    st.markdown(f"**{display_name}**  \n`{username}`")
    st.caption(f"{role_labels(roles)} · {team or 'no team'}")


def internal_link(url: str, label: str, icon: str | None = None) -> None:
    """A link to another portal page (``/registry?model=3``) that opens in the same tab."""
    parsed = urlparse(url)
    path = parsed.path.strip("/")
    spec = next((s for s in SPECS_BY_KEY.values() if s.url_path == path), None)
    if spec is None:
        st.markdown(f"[{label}]({url})")
        return
    params = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    st.page_link(spec.file, label=label, icon=icon, query_params=params)


def portal_job(job_ref: object) -> bool:
    """Whether a model version's job reference is one of the portal's fine-tuning jobs (its
    id), which has a page of its own, rather than an external job's name or ARN."""
    return isinstance(job_ref, str) and job_ref.isdigit()


def job_link(job_ref: str) -> None:
    """A link to the portal's fine-tuning job ``job_ref`` (see :func:`portal_job`)."""
    internal_link(
        f"/fine-tuning?job={job_ref}", f"Fine-tuning job #{job_ref}", ":material/model_training:"
    )


def page_footer(total: int, noun: str, page: int, pages: int) -> None:
    """ "1,234 models · page 2 of 50" and, when there is more than one page, a page picker that
    moves the ``page`` URL parameter (so a copied link reopens the same page)."""
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(f"{total:,} {noun if total == 1 else noun + 's'} · page {page} of {pages}")
    if pages > 1:
        chosen = right.number_input(
            "Page", min_value=1, max_value=pages, value=page, label_visibility="collapsed"
        )
        if chosen != page:
            st.query_params["page"] = str(chosen)
            st.rerun(scope="app")
