"""The master patient index: one person across institutions.

Each institution registers patients under its own MRN; the index keeps one golden record per
person (a Patient tagged `golden`) and links each source record to it with Patient.link.

- features, names, idnumber: a Patient reduced to comparable features (hanzi and pinyin names,
  GB 11643 resident ID, birth date, phones, address);
- compare, model, blocking, engine: field comparisons, the Fellegi-Sunter model with households
  estimated by EM, blocking keys, and the in-memory `Matcher`;
- index: the matcher and links of one store, loaded from it and kept in step (`index_for(store)`);
- linking, golden, review: the decisions after a change, golden records, stewards' review Tasks;
- changes, rebuild: the outbox handlers (`on_patient_change`) and the bulk `rebuild(store)`;
- match, merge, everything, references: Patient/$match, $merge/$unmerge and $everything;
- febrl, chinese, evaluate: benchmark data (FEBRL, a generated Chinese set) and pairwise accuracy.
"""
from ihs.mpi.changes import on_patient_change, on_patient_changes, on_task_change, on_task_changes
from ihs.mpi.rebuild import rebuild

__all__ = ["on_patient_change", "on_patient_changes", "on_task_change", "on_task_changes", "rebuild"]
