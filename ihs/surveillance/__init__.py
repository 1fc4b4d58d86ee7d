"""Syndromic surveillance: syndromic counts, aberration detection, alerts and case reports.

- syndromes: the syndrome definitions (syndromes.toml) and the classification of a visit;
- visits, counts: a visit as counted (day, district, facility, age band, sex) and the derived
  store of counts, kept by `changes.on_change` from the outbox and rebuildable from the records;
- detection: EARS C1/C2/C3, CUSUM, EWMA, Farrington, Noufaily and the default detector;
- monitor, alerts: the daily run that raises Flag + Communication for the CDC;
- reports: counts as MeasureReports; casereport: notifiable-disease case reports with a Task.
"""
