"""The on-device web page: its built assets (`dist/`, made from `web/` by `make setup`), their
serving under `/`, and the page's login sessions.

A package of its own rather than part of `vigil.api`: `api/` is the ISAPI resources, while this
is a built artefact with its own build, cache and header policy; keeping `dist/` here makes the
wheel's package data one place, and the API works (and is tested) without the page built.
"""
