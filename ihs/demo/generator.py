"""The demo region: IHS's own seeded generator of a Chinese regional health network.

`generate_region` returns transaction Bundles to POST, in order, to the server's base
URL: first the region's institutions, departments, sites and staff, then one Bundle per
resident with the Patient and their clinical history. References follow the scheme of
ihs/demo/bundle.py: urn:uuid inside a Bundle, conditional references on identifiers to
the region's shared resources. The output depends only on the seed and the anchor date;
resident i is the same whatever the number of residents asked for.
"""
from __future__ import annotations

import random
from datetime import date

from ihs.demo.bundle import transaction
from ihs.demo.history import clinical_history
from ihs.demo.region import build_region
from ihs.demo.residents import Registry, draw_resident

ANCHOR = date(2026, 11, 1)


def generate_region(seed: int = 42, residents: int = 300, anchor: date = ANCHOR) -> list[dict]:
    """The demo region as transaction Bundles in dependency order: the region, then each resident."""
    region = build_region(random.Random(f"{seed}/region"))
    registry = Registry()
    bundles = [region.bundle]
    for index in range(residents):
        # each resident draws from their own stream, so adding residents leaves the others unchanged
        rng = random.Random(f"{seed}/resident/{index}")
        resident = draw_resident(rng, region, registry, anchor)
        bundles.append(transaction(clinical_history(rng, region, registry, resident, anchor)))
    return bundles
