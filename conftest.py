"""Loads the hrw-preflight plugin for every pytest run started in this repository."""

pytest_plugins = ["hrw_preflight.plugin"]
