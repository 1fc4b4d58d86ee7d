"""Drug-drug interactions and duplicate therapy between the order and the patient's other medicines."""
from __future__ import annotations

from ihs.cds import suggest
from ihs.cds.findings import Finding
from ihs.cds.kb import Source

HEADLINE = {"critical": "禁忌联用", "warning": "相互作用", "info": "相互作用提示"}


def _pair(a, b) -> str:
    return "+".join(sorted([a.drug.key, b.drug.key]))


def check(review) -> list[Finding]:
    """One finding per other medicine the ordered drug interacts with."""
    order = review.order
    if order.drug is None:
        return []
    findings = []
    for other in review.others:
        if other.drug is None:
            continue
        hit = review.kb.interaction(other.drug, order.drug)
        if hit is None:
            continue
        replacements = [d for d in (review.kb.drug(k) for k in hit.alternatives) if d]
        lines = [f"**{order.label}** 与 **{other.label}** 同用（{hit.classes[0]} + {hit.classes[1]}）：{hit.effect_zh}。",
                 "", hit.effect, "", f"Source: {hit.source.label}"]
        if replacements and hit.alternatives_source:
            lines += ["", f"Alternatives: {', '.join(d.key for d in replacements)} ({hit.alternatives_source})."]
        findings.append(Finding(
            "ddi", f"ddi:{hit.rule}:{_pair(order, other)}", hit.severity,
            f"{HEADLINE[hit.severity]}：{order.drug.zh or order.drug.key} + {other.drug.zh or other.drug.key}，{hit.effect_zh}",
            "\n".join(lines), hit.source, order.request, [other.reference()],
            [] if hit.severity == "info" else suggest.present(
                suggest.remove(order), *(suggest.replace(order, d) for d in replacements)),
            "MedicationRequest.medication"))
    return findings


def duplicates(review) -> list[Finding]:
    """The same ingredient twice, or two drugs of one duplicate-therapy group."""
    order = review.order
    if order.drug is None:
        return []
    group = order.drug.formulary.group if order.drug.formulary else None
    findings = []
    for other in review.others:
        if other.drug is None:
            continue
        if other.drug.key == order.drug.key:
            key, what = f"duplicate:same:{order.drug.key}", f"已在使用同一药物 {other.label}"
        elif group and other.drug.formulary and other.drug.formulary.group == group:
            key, what = f"duplicate:{group}:{_pair(order, other)}", f"与 {other.label} 同属一类（{group}）"
        else:
            continue
        findings.append(Finding(
            "duplicate", key, "warning", f"重复用药：{order.drug.zh or order.drug.key}，{what}",
            f"**{order.label}** duplicates **{other.label}** "
            f"({'same ingredient' if other.drug.key == order.drug.key else 'duplicate-therapy group ' + group}). "
            "Stop one of them, or record why both are needed.",
            Source("IHS formulary duplicate-therapy groups"), order.request, [other.reference()],
            suggest.present(suggest.remove(order)), "MedicationRequest.medication"))
    return findings
