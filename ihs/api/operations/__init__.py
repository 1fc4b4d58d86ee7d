"""FHIR operations and platform services, one module each (`match.py` serves Patient/$match).

Every module in this package that defines `ROUTES` (a list of Starlette routes or mounts) is
served by the API, ahead of the generic REST routes; deleting a module removes its endpoints.
"""
from __future__ import annotations

import importlib
import pkgutil


def operation_routes() -> list:
    routes = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        routes.extend(getattr(loaded, "ROUTES", []))
    return routes
