"""The patient data a review needs: from the request's prefetch, else fetched with the same templates.

A service's prefetch templates are the one list of the data it needs. What the CDS client
prefetched is used as given; a template it left out is run against the FHIR server (IHS's own store,
or the client's server with the fhirAuthorization token); when neither is possible the service
answers 412, as the CDS Hooks specification requires.
"""
from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urljoin

import orjson

from ihs.fhir.errors import FhirError

TOKEN = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
USER_TOKENS = {"userPractitionerId": "Practitioner", "userPractitionerRoleId": "PractitionerRole",
               "userPatientId": "Patient", "userRelatedPersonId": "RelatedPerson"}
MAX_PAGES = 20


def render(template: str, context: dict) -> str | None:
    """The query a template stands for in `context`, or None when a token has no value."""
    missing = False

    def value(match) -> str:
        nonlocal missing
        token = match.group(1)
        if token in USER_TOKENS:
            kind, _, ident = str(context.get("userId", "")).partition("/")
            found = ident if kind == USER_TOKENS[token] else None
        elif token.startswith("context."):
            found = context.get(token.removeprefix("context."))
        else:
            found = None
        if found is None or isinstance(found, (dict, list)):
            missing = True
            return ""
        return str(found)

    rendered = TOKEN.sub(value, template)
    return None if missing else rendered


class StoreFetcher:
    """Runs FHIR reads and searches against IHS's own store, in the caller's unit of work."""

    def __init__(self, uow):
        self.uow = uow

    def read(self, reference: str) -> dict | None:
        res_type, _, res_id = reference.partition("/")
        if not res_id or "/" in res_id:
            return None
        stored = self.uow.current(res_type, res_id)
        return stored.resource() if stored and not stored.deleted else None

    def search(self, query: str) -> list[dict]:
        from ihs.store.search import find

        res_type, _, params = query.partition("?")
        return [s.resource() for s in find(self.uow, res_type, parse_qsl(params), limit=1000)]


class RemoteFetcher:
    """Runs FHIR reads and searches against the CDS client's FHIR server with its bearer token."""

    def __init__(self, base: str, token: str | None, timeout: float = 5.0):
        self.base = base.rstrip("/") + "/"
        self.token = token
        self.timeout = timeout

    def _get(self, url: str) -> dict | None:
        headers = {"Accept": "application/fhir+json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout) as r:
                return orjson.loads(r.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 410):
                return None
            raise _unreachable(f"the FHIR server answered {exc.code} to {url}") from exc
        except (OSError, ValueError) as exc:
            raise _unreachable(f"the FHIR server could not be read at {url}: {exc}") from exc

    def read(self, reference: str) -> dict | None:
        return self._get(urljoin(self.base, reference))

    def search(self, query: str) -> list[dict]:
        found, url = [], urljoin(self.base, query)
        for _ in range(MAX_PAGES):
            bundle = self._get(url) or {}
            found += [e["resource"] for e in bundle.get("entry", [])
                      if "resource" in e and (e.get("search") or {}).get("mode", "match") == "match"]
            url = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            if not url:
                break
        return found


def _unreachable(message: str) -> FhirError:
    return FhirError(message, 412, code="processing")


def _given(value) -> tuple[bool, object]:
    """A prefetched value as (usable, data): an OperationOutcome means the client could not fetch it."""
    if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
        return False, None
    return True, value


def _resources(value) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        return [e["resource"] for e in value.get("entry", []) if "resource" in e
                and (e.get("search") or {}).get("mode", "match") == "match"]
    return [value] if isinstance(value, dict) else []


@dataclass
class PatientRecord:
    """What is known about the patient, keyed by prefetch key; `fetcher` resolves further references."""

    data: dict = field(default_factory=dict)
    fetcher: object | None = None
    cache: dict = field(default_factory=dict)

    def one(self, key: str) -> dict | None:
        found = _resources(self.data.get(key))
        return found[0] if found else None

    def many(self, key: str) -> list[dict]:
        return _resources(self.data.get(key))

    def resolve(self, reference: dict | None, contained_in: dict | None = None) -> dict | None:
        """The resource a Reference points to: contained, prefetched, or read through the fetcher."""
        ref = (reference or {}).get("reference")
        if not ref:
            return None
        if ref.startswith("#") and contained_in:
            return next((c for c in contained_in.get("contained", []) if c.get("id") == ref[1:]), None)
        for value in self.data.values():
            for resource in _resources(value):
                if f"{resource.get('resourceType')}/{resource.get('id')}" == ref:
                    return resource
        if ref not in self.cache and self.fetcher is not None and "/" in ref and "?" not in ref:
            self.cache[ref] = self.fetcher.read(ref)
        return self.cache.get(ref)


def gather(templates: dict[str, str], context: dict, prefetch: dict | None, fetcher) -> PatientRecord:
    """Satisfy every prefetch template, from the prefetch first and the fetcher for what is missing."""
    record = PatientRecord(fetcher=fetcher)
    prefetch = prefetch or {}
    for key, template in templates.items():
        usable, value = _given(prefetch[key]) if key in prefetch else (False, None)
        if usable:
            record.data[key] = value
            continue
        query = render(template, context)
        if query is None:
            continue
        if fetcher is None:
            raise _unreachable(f"prefetch '{key}' ({query}) was not provided and the service has no access to the "
                               "FHIR server; send fhirServer and fhirAuthorization, or the prefetch")
        record.data[key] = fetcher.search(query) if "?" in query else fetcher.read(query)
    return record
