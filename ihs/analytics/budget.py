"""Privacy budgets, per user and dataset and per dataset over all users, kept as FHIR Basic resources.

A dataset is the resource type a view reads (every view over Condition draws on one budget, so
rewording a view buys nothing). Each (user, dataset) pair and each dataset has a ledger: a Basic
resource with a deterministic id, `code` privacy-budget and extensions for the user, the
dataset, and the epsilon and delta allowed and spent. `charge` adds a release's cost to both
ledgers in one transaction before anything is released, and refuses (403) when either would go
over its limit; two concurrent charges conflict on the ledger's version and the loser retries.
An administrator raises a limit by editing the Basic resource.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ihs.fhir.errors import Conflict, FhirError
from ihs.fhir.validation import validate
from ihs.store.store import Store, UnitOfWork

BASE = "https://ihs.example.org/fhir"
CODE_SYSTEM = f"{BASE}/CodeSystem/analytics"
EXTENSION = f"{BASE}/StructureDefinition/privacy-budget-"
ALL_USERS = "*"
USER_LIMITS = (float(os.environ.get("IHS_DP_USER_EPSILON", 3.0)), float(os.environ.get("IHS_DP_USER_DELTA", 1e-5)))
DATASET_LIMITS = (float(os.environ.get("IHS_DP_DATASET_EPSILON", 10.0)),
                  float(os.environ.get("IHS_DP_DATASET_DELTA", 1e-4)))
_RETRIES = 5


class BudgetExhausted(FhirError):
    def __init__(self, message: str):
        super().__init__(message, 403, code="forbidden")


@dataclass
class Ledger:
    user: str
    dataset: str
    epsilon_limit: float
    delta_limit: float
    epsilon_spent: float = 0.0
    delta_spent: float = 0.0

    def remaining(self) -> dict:
        return {"epsilon": round(self.epsilon_limit - self.epsilon_spent, 9),
                "delta": self.delta_limit - self.delta_spent}


def ledger_id(user: str, dataset: str) -> str:
    return "privacy-budget-" + hashlib.sha256(f"{user}\0{dataset}".encode()).hexdigest()[:40]


def _ledger_of(resource: dict) -> Ledger:
    values = {e["url"].removeprefix(EXTENSION): next(v for k, v in e.items() if k.startswith("value"))
              for e in resource.get("extension", []) if e.get("url", "").startswith(EXTENSION)}
    return Ledger(values["user"], values["dataset"], float(values["epsilon-limit"]), float(values["delta-limit"]),
                  float(values.get("epsilon-spent", 0)), float(values.get("delta-spent", 0)))


def _resource(ledger: Ledger) -> dict:
    fields = [("user", "valueString", ledger.user), ("dataset", "valueString", ledger.dataset),
              ("epsilon-limit", "valueDecimal", ledger.epsilon_limit),
              ("epsilon-spent", "valueDecimal", ledger.epsilon_spent),
              ("delta-limit", "valueDecimal", ledger.delta_limit), ("delta-spent", "valueDecimal", ledger.delta_spent)]
    return {"resourceType": "Basic", "id": ledger_id(ledger.user, ledger.dataset),
            "code": {"coding": [{"system": CODE_SYSTEM, "code": "privacy-budget"}], "text": "privacy budget"},
            "extension": [{"url": EXTENSION + name, kind: value} for name, kind, value in fields]}


def ledger(uow: UnitOfWork, user: str, dataset: str) -> Ledger:
    """The ledger of `user` (ALL_USERS: the dataset's own) for `dataset`, at its default limits if new."""
    stored = uow.current("Basic", ledger_id(user, dataset))
    if stored is not None and not stored.deleted:
        return _ledger_of(stored.resource())
    limits = DATASET_LIMITS if user == ALL_USERS else USER_LIMITS
    return Ledger(user, dataset, *limits)


def charge(store: Store, user: str, dataset: str, epsilon: float, delta: float) -> dict[str, Ledger]:
    """Spend (epsilon, delta) from the user's and the dataset's budgets; BudgetExhausted if either lacks it."""
    for _ in range(_RETRIES - 1):
        try:
            return _charge_both(store, user, dataset, epsilon, delta)
        except Conflict:
            continue  # another charge changed a ledger first: read it again
    return _charge_both(store, user, dataset, epsilon, delta)


def _charge_both(store: Store, user: str, dataset: str, epsilon: float, delta: float) -> dict[str, Ledger]:
    with store.session(write=True) as uow:
        return {"user": _charge(uow, user, dataset, epsilon, delta),
                "dataset": _charge(uow, ALL_USERS, dataset, epsilon, delta)}


def _charge(uow: UnitOfWork, user: str, dataset: str, epsilon: float, delta: float) -> Ledger:
    current = uow.current("Basic", ledger_id(user, dataset))
    found = ledger(uow, user, dataset)
    if found.epsilon_spent + epsilon > found.epsilon_limit + 1e-12 or found.delta_spent + delta > found.delta_limit:
        whose = "all users together" if user == ALL_USERS else user
        raise BudgetExhausted(
            f"the privacy budget of {whose} for {dataset} cannot pay epsilon {epsilon:.3g}, delta {delta:.3g}: "
            f"spent epsilon {found.epsilon_spent:.3g} of {found.epsilon_limit:.3g}, "
            f"delta {found.delta_spent:.3g} of {found.delta_limit:.3g}")
    found.epsilon_spent += epsilon
    found.delta_spent += delta
    resource = _resource(found)
    validate(resource)
    if current is None:
        uow.create(resource)
    else:
        uow.update(resource, current)
    return found
