"""The portal's pages: ``pages/views/`` holds one script per page, ``pages/components/`` the
widgets and formatters they share.

No page script sits directly in ``pages/``: Streamlit runs top-level ``pages/*.py`` files on
its own (its older multipage mode) for requests that arrive before any session has called
``st.navigation``, which would bypass the login in ``app.py``."""
