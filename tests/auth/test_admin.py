"""The operator's functions (ihs user add, ihs client add, ihs token) and the demo accounts."""
import json

import pytest

from ihs.auth import admin
from ihs.auth.authority import Authority
from ihs.auth.demo import create_demo_accounts
from ihs.auth.principal import ROLES
from ihs.fhir.errors import FhirError

BASE = "http://ihs.test"


def test_issue_token_for_a_backend_client(secure_store, signing_key, monkeypatch):
    monkeypatch.setenv("IHS_SIGNING_KEY", "database")
    admin.add_client(secure_store, "gateway", kind="backend", scopes="system/Observation.cu system/Device.rs",
                     jwks=admin.generate_client_key()[1], roles=("system",))
    issued = admin.issue_token(secure_store, "gateway", "system/Observation.cu", base_url=BASE)
    assert issued["scope"] == "system/Observation.cu"
    principal = Authority(secure_store, BASE).authenticate({"authorization": f"Bearer {issued['access_token']}"})
    assert principal.client_id == "gateway" and principal.roles == {"system"}


def test_issue_token_defaults_to_the_registered_scopes(secure_store, monkeypatch):
    monkeypatch.setenv("IHS_SIGNING_KEY", "database")
    admin.add_client(secure_store, "gateway", kind="backend", scopes="system/Observation.cu",
                     jwks=admin.generate_client_key()[1])
    assert admin.issue_token(secure_store, "gateway", base_url=BASE)["scope"] == "system/Observation.cu"


def test_issue_token_never_widens(secure_store, monkeypatch):
    monkeypatch.setenv("IHS_SIGNING_KEY", "database")
    admin.add_client(secure_store, "gateway", kind="backend", scopes="system/Observation.cu",
                     jwks=admin.generate_client_key()[1])
    with pytest.raises(FhirError, match="not allowed"):
        admin.issue_token(secure_store, "gateway", "system/*.cruds", base_url=BASE)
    with pytest.raises(FhirError, match="no active client"):
        admin.issue_token(secure_store, "nobody", base_url=BASE)


def test_client_keys_from_a_file(secure_store, tmp_path):
    private, public = admin.generate_client_key("RS384")
    path = tmp_path / "his.jwks.json"
    path.write_text(json.dumps(public))
    client = admin.add_client(secure_store, "his", kind="backend", scopes="system/*.rs", jwks=str(path))
    assert json.loads(client.jwks)["keys"][0]["kid"] == private["kid"]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    from ihs.api import bundle
    from ihs.demo.generator import generate_region
    from ihs.store.store import Store
    from tests.auth.security_tables import reset_security_tables

    store = Store(f"sqlite:///{tmp_path_factory.mktemp('demo')}/ihs.db")
    store.create_schema()
    reset_security_tables(store)
    for item in generate_region(seed=7, residents=2):
        bundle.process(store, item)
    yield store
    store.dispose()


def test_demo_accounts_one_per_role(demo_store, monkeypatch):
    monkeypatch.setenv("IHS_SIGNING_KEY", "database")
    accounts = create_demo_accounts(demo_store)
    assert sorted(role for _u, _p, role, _d in accounts) == sorted(ROLES)
    again = create_demo_accounts(demo_store)  # a second start keeps them
    assert [a[0] for a in again] == [a[0] for a in accounts]


def test_demo_doctor_logs_in_with_the_documented_password(demo_store, signing_key):
    from ihs.auth.server import authorization_request, identity, login
    from tests.auth.clients import authorization_params, register_app

    create_demo_accounts(demo_store)
    register_app(demo_store)
    authority = Authority(demo_store, BASE, key=signing_key)
    request = authorization_request(authority, authorization_params("user/*.rs"))
    result = login(authority, request, "doctor", "demo-doctor", "127.0.0.1")
    roles, organizations, fhir_user = identity(authority, result.user)
    assert roles == {"practitioner"} and fhir_user.startswith("Practitioner/")
    assert organizations  # the community health centre
