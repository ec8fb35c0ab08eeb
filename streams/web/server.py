"""The worker's web server: Faust's aiohttp server without Faust's own pages.

Faust mounts pages of its own: `/router/` (which worker owns a table key: the cluster's
URLs), `/table/` (table contents), and at `/` either sensor statistics and the partition
assignment (`web_stats_enabled`) or a placeholder index. The app settings turn the first
ones off (`streams/app.py`); this driver drops the placeholder, so `/` is ours to serve
(404 until a page is registered there). Installed through Faust's web-driver entry point
`abacus` (pyproject.toml), selected with ``web="abacus://"``.
"""

from __future__ import annotations

from faust.web.drivers.aiohttp import Web

__all__ = ["URL", "AbacusWeb"]

URL = "abacus://"


class AbacusWeb(Web):
    """Faust's aiohttp driver serving only the pages Abacus registers."""

    default_blueprints = ()  # /router, /table
    debug_blueprints = ()  # /graph, statistics at /
    production_blueprints = ()  # the placeholder index at /
