"""The `ihs` command: the platform's verbs."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click


@click.group()
def main():
    """IHS: the regional smart-healthcare platform."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--database", "database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
@click.option("--workers", default=1, show_default=True, type=int, help="worker processes over one database")
@click.option("--demo", is_flag=True, help="create the demo region on first start")
@click.option("--log-level", default=os.environ.get("IHS_LOG_LEVEL", "INFO"), show_default=True)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="serve HTTPS with this certificate")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="the certificate's private key")
@click.option("--unsecured-benchmark", is_flag=True, hidden=True,
              help="no authentication, policy or audit, on 127.0.0.1 only: to measure what security costs")
def serve(host, port, database, workers, demo, log_level, tls_cert, tls_key, unsecured_benchmark):
    """Serve the FHIR API."""
    import uvicorn

    from ihs.api.observability import configure_logging
    from ihs.server import UNSECURED_BENCHMARK, open_store, start_filing, stop_filing
    from ihs.store.engine import database_url

    url = database_url(database)
    os.environ["IHS_DATABASE_URL"] = url
    if unsecured_benchmark:
        if host != "127.0.0.1":
            raise click.UsageError("--unsecured-benchmark serves on 127.0.0.1 only")
        click.echo("WARNING: serving without authentication, access policy or audit (benchmark only)", err=True)
        os.environ[UNSECURED_BENCHMARK] = "1"
    configure_logging(log_level)
    store = open_store(url)
    if demo:
        _ensure_demo(store)
    store.dispose()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ihs-metrics-")
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    scheme = "https" if tls_cert else "http"
    click.echo(f"IHS FHIR API on {scheme}://{host}:{port} (database {url.split('@')[-1]}, {workers} worker(s))",
               err=True)
    filer = start_filing(url) if workers > 1 and not unsecured_benchmark else None
    try:
        uvicorn.run("ihs.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_config=None, access_log=False, ssl_certfile=tls_cert, ssl_keyfile=tls_key)
    finally:
        if filer is not None:
            stop_filing(filer)


def _ensure_demo(store) -> None:
    from sqlalchemy import func, select

    from ihs.auth.demo import create_demo_accounts
    from ihs.store.schema import resources

    with store.engine.connect() as conn:
        empty = not conn.execute(select(func.count()).select_from(resources)).scalar_one()
    if empty:
        click.echo("creating the demo region (first start)...", err=True)
        _load_demo(store, seed=42, residents=300)
    click.echo("demo accounts (demo mode only; log in at /auth/authorize through a SMART app):", err=True)
    for username, password, role, description in create_demo_accounts(store):
        click.echo(f"  {username:16} {password:24} {role:14} {description}", err=True)


def _load_demo(store, *, seed: int, residents: int) -> None:
    from tqdm import tqdm

    from ihs.api import bundle
    from ihs.demo.generator import generate_region

    bundles = generate_region(seed=seed, residents=residents)
    for item in tqdm(bundles, unit="bundle", desc="demo region"):
        bundle.process(store, item)


@main.command()
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--residents", default=300, show_default=True, type=int)
def demo(database, seed, residents):
    """Create the demo health region in the database."""
    from ihs.server import open_store

    _load_demo(open_store(database), seed=seed, residents=residents)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
def load(paths, database):
    """Load Bundles, resources, NDJSON and archives of them into the database."""
    from ihs.load import load as load_paths
    from ihs.server import open_store

    report = load_paths(open_store(database), list(paths))
    for res_type, count in sorted(report.counts.items()):
        click.echo(f"{res_type:32} {count:>8}")
    click.echo(f"{'total':32} {sum(report.counts.values()):>8}")
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    sys.exit(1 if report.errors else 0)


@main.command()
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
def reindex(database):
    """Index existing resources for SearchParameters added since they were stored."""
    from ihs.server import open_store
    from ihs.store.reindex import reindex as run_reindex

    report = run_reindex(open_store(database))
    for parameter in report["parameters"]:
        click.echo(f"SearchParameter/{parameter['id']} ({parameter['code']}): {parameter['status']} "
                   f"on {', '.join(parameter['types'])}")
    click.echo(f"{report['resources']} resources, {report['rows']} index rows")
    for error in report["errors"]:
        click.echo(f"error: {error}", err=True)
    sys.exit(1 if report["errors"] else 0)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
@click.option("--level", type=click.Choice(["system", "patient", "group"]), default="system", show_default=True)
@click.option("--group", default=None, help="Group id, with --level group")
@click.option("--type", "types", multiple=True, help="resource types to export (repeatable)")
@click.option("--since", default=None, help="only resources changed since this instant")
@click.option("--deidentify", is_flag=True, help="research form: pseudonyms, shifted dates, no free text")
def export(directory, database, level, group, types, since, deidentify):
    """Bulk-export resources as NDJSON files, one per type."""
    from ihs.analytics.commands import export as run_export
    from ihs.server import open_store

    result = run_export(open_store(database), directory, level=level, group=group, types=list(types) or None,
                        since=since, deidentify=deidentify)
    for file in result.files:
        click.echo(f"{file.type:32} {file.count:>8}  {file.path}")


@main.group()
def mpi():
    """The master patient index."""


@mpi.command("rebuild")
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
def mpi_rebuild(database):
    """Match every patient again, link them to golden records, and retrain the model."""
    from ihs.mpi.rebuild import rebuild
    from ihs.server import open_store

    click.echo(rebuild(open_store(database)))


@main.command()
@click.option("--client", "client_id", required=True, help="a backend client registered with `ihs client add`")
@click.option("--scope", default=None, help="narrower scopes than the client's registration")
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
@click.option("--base-url", default=None, help="the FHIR base URL the token is for (its audience)")
def token(client_id, scope, database, base_url):
    """Print an access token for a registered backend client (operators and scripts)."""
    from ihs.auth.admin import issue_token
    from ihs.server import open_store

    click.echo(issue_token(open_store(database), client_id, scope, base_url=base_url)["access_token"])


@main.group()
def user():
    """Accounts of people (patients and staff)."""


@user.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="patient, practitioner, nurse, pharmacist, ...")
@click.option("--fhir-user", default=None, help="the Patient/Practitioner/RelatedPerson this account is")
@click.option("--organization", "organizations", multiple=True, help="Organization/<id> the account works for")
@click.option("--password", default=None, help="generated and printed once when not given")
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
def user_add(username, roles, fhir_user, organizations, password, database):
    """Create an account."""
    from ihs.auth.admin import add_user
    from ihs.server import open_store

    _, password = add_user(open_store(database), username, password, roles=roles, fhir_user=fhir_user,
                           organizations=organizations)
    click.echo(f"{username} created; password: {password}")


@main.group()
def client():
    """Applications and systems allowed to call the API."""


@client.command("add")
@click.argument("client_id")
@click.option("--kind", type=click.Choice(["backend", "public"]), default="backend", show_default=True)
@click.option("--scope", "scopes", required=True, help='e.g. "system/*.rs" or "patient/*.rs launch/patient"')
@click.option("--jwks", default=None, help="the backend client's public keys (JWKS file); generated when absent")
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--role", "roles", multiple=True, help="system, insurer, device, regulator, cdc-officer, ...")
@click.option("--organization", "organizations", multiple=True)
@click.option("--patient", default=None, help="a device's bound patient (Patient/<id>)")
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
def client_add(client_id, kind, scopes, jwks, redirect_uris, roles, organizations, patient, database):
    """Register a client; a backend client without --jwks gets a new key pair, printed once."""
    import json

    from ihs.auth.admin import add_client, generate_client_key
    from ihs.server import open_store

    private = None
    if kind == "backend" and not jwks:
        private, jwks = generate_client_key()
    add_client(open_store(database), client_id, kind=kind, scopes=scopes, jwks=jwks, redirect_uris=redirect_uris,
               roles=roles, organizations=organizations, patient=patient)
    click.echo(f"client {client_id} registered")
    if private:
        click.echo("its private key (give it to the client, keep it secret; it is not stored):")
        click.echo(json.dumps(private))


@main.group()
def audit():
    """The tamper-evident audit trail."""


@audit.command("verify")
@click.option("--database", default=None, help="sqlite:///path or postgresql://... (or IHS_DATABASE_URL)")
@click.option("--expected-head", default=None, help="the chain head recorded elsewhere, to detect truncation")
def audit_verify(database, expected_head):
    """Walk the hash chain and name the first modified, deleted or re-ordered AuditEvent."""
    from ihs.audit.verify import verify_command
    from ihs.store.engine import database_url

    status, report = verify_command(database_url(database), expected_head)
    click.echo(report)
    sys.exit(status)


if __name__ == "__main__":
    main()
