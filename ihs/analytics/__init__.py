"""Analytics over the FHIR store: SQL-on-FHIR views, their tables, bulk export, indicators and privacy.

- viewdef: ViewDefinitions compiled to row producers (fhirpath*, temporal: the FHIRPath they use);
- source, run: the resources a view or an export reads (the store by keyset pages, NDJSON files);
- tables, materialize, warehouse: rows to DuckDB, Parquet, CSV, JSON and NDJSON, kept current;
- spark: the same views on Apache Spark over exported NDJSON;
- library: ViewDefinitions stored as Library resources;
- bulk, jobs, compartment: FHIR Bulk Data $export and its background jobs;
- indicators: the health authority's resource indicators over the warehouse;
- deidentify, privacy, budget: the research export and differentially private counts with budgets;
- commands: the analytics verbs of the `ihs` command.
"""
