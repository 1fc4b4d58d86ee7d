"""Transaction Bundles and the two kinds of reference the demo region uses.

Inside a Bundle, entries are created with POST under `urn:uuid:` fullUrls and refer to
one another by those urns. Across Bundles, a resource refers to a shared resource of the
region (Organization, Location, Practitioner) by a conditional reference on its business
identifier, `Organization?identifier=<system>|<value>`, which the server resolves when it
processes the transaction. The region's own Bundle creates those resources with
`ifNoneExist` on the same identifier, so loading it twice creates nothing new.
"""
from __future__ import annotations

import random
import uuid


def new_urn(rng: random.Random) -> str:
    """A `urn:uuid:` drawn from the generator, so the same seed gives the same urns."""
    return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def conditional(resource_type: str, system: str, value: str) -> str:
    """A conditional reference to the resource holding this identifier."""
    return f"{resource_type}?identifier={system}|{value}"


def ref(target: str, display: str | None = None) -> dict:
    """A Reference to a urn or conditional reference, with an optional display."""
    reference = {"reference": target}
    if display:
        reference["display"] = display
    return reference


def entry(url: str, resource: dict, if_none_exist: str | None = None) -> dict:
    """A transaction entry that creates `resource` under the fullUrl `url`."""
    request = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"fullUrl": url, "resource": resource, "request": request}


def transaction(entries: list[dict]) -> dict:
    """A transaction Bundle of the given entries."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
