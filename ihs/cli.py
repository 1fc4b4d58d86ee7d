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
def serve(host, port, database, workers, demo, log_level, tls_cert, tls_key):
    """Serve the FHIR API."""
    import uvicorn

    from ihs.api.observability import configure_logging
    from ihs.server import open_store
    from ihs.store.engine import database_url

    url = database_url(database)
    os.environ["IHS_DATABASE_URL"] = url
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
    uvicorn.run("ihs.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_config=None, access_log=False, ssl_certfile=tls_cert, ssl_keyfile=tls_key)


def _ensure_demo(store) -> None:
    from sqlalchemy import func, select

    from ihs.store.schema import resources

    with store.engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(resources)).scalar_one():
            return
    click.echo("creating the demo region (first start)...", err=True)
    _load_demo(store, seed=42, residents=300)


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


if __name__ == "__main__":
    main()
