"""A resident's clinical history over the three years before the anchor date.

The history follows how care runs in a Chinese region. Chronic conditions are diagnosed
at the community health centre or a hospital specialist; hypertension, diabetes and the
other chronic conditions are then followed up every quarter by the family doctor, who
renews the prescriptions; specialists review them once a year; residents over 65 have a
yearly health check and young children growth checks; colds, influenza and
gastroenteritis bring people to the centre or to a hospital's emergency department; a
stroke brings an emergency visit and an admission.
"""
from __future__ import annotations

import random
from datetime import date, timedelta

from ihs.demo import observations
from ihs.demo.body import Body
from ihs.demo.chart import Chart
from ihs.demo.conditions import DISEASES, condition, draw_chronic
from ihs.demo.encounters import appointment
from ihs.demo.medications import REGIMEN_WEIGHTS, REGIMENS
from ihs.demo.region import Region, Site
from ihs.demo.residents import Registry, Resident
from ihs.demo.timeline import Visit, any_time, clinic_time, day_between

HISTORY_YEARS = 3
SPECIALTIES = {"diabetes": "ENDO", "coronary": "CARD", "copd": "RESP", "asthma": "RESP", "stroke": "NEUR",
               "influenza": "RESP"}
# share of a condition's specialist care that goes up to the provincial hospital
PROVINCIAL_SHARE = {"coronary": 0.25, "diabetes": 0.1, "copd": 0.1, "asthma": 0.1, "stroke": 0.1}
# acute condition -> episodes a year by age band (under 7, under 18, under 65, 65 and over), and its months
ACUTE = {
    "urti": ((1.2, 0.6, 0.3, 0.4), (1, 2, 3, 4, 5, 9, 10, 11, 12)),
    "influenza": ((0.12, 0.10, 0.04, 0.08), (12, 1, 2, 3)),
    "gastroenteritis": ((0.12, 0.05, 0.05, 0.05), (6, 7, 8, 9)),
}
# acute condition -> range of the fever (degrees above 36.5) it brings
FEVER = {"urti": (0.4, 1.5), "influenza": (1.5, 2.6), "gastroenteritis": (0.0, 0.8)}
GENERAL_VITALS = ["blood-pressure", "heart-rate", "weight", "bmi"]


def clinical_history(rng: random.Random, region: Region, registry: Registry, resident: Resident,
                     anchor: date) -> list[dict]:
    """The entries of a resident's Bundle: the Patient and everything that happened to them."""
    onsets = draw_chronic(rng, resident.age(anchor), resident.gender, anchor)
    body = Body.draw(rng, resident.gender, resident.birth_date, onsets)
    chart = Chart(rng, region, registry, resident, body, anchor)
    for key, onset in sorted(onsets.items(), key=lambda item: item[1]):
        chart.regimens[key] = _regimen(rng, key)
        diagnose(chart, key, onset)
    age = resident.age(anchor)
    if onsets or age >= 65 or age < 7 or rng.random() < 0.3:
        resident.sign_family_doctor()
    if onsets:
        follow_ups(chart)
        specialist_reviews(chart)
    if age >= 65:
        health_check(chart)
    if age < 7:
        growth_checks(chart)
    acute_episodes(chart)
    chart.settle_prescriptions()
    return chart.entries


def _regimen(rng: random.Random, key: str) -> list[str]:
    choices = REGIMENS.get(key, [[]])
    return list(rng.choices(choices, weights=REGIMEN_WEIGHTS.get(key, [1] * len(choices)))[0])


def _window_start(chart: Chart) -> date:
    return max(chart.anchor - timedelta(days=round(HISTORY_YEARS * 365.25)),
               chart.resident.birth_date + timedelta(days=28))


def _hospital(chart: Chart, key: str) -> tuple[Site, str]:
    """The hospital and department where a condition is seen.

    Mostly the local hospital (the city's for the heart); some residents go up to the
    provincial hospital instead.
    """
    region, rng = chart.region, chart.rng
    if rng.random() < PROVINCIAL_SHARE.get(key, 0.0):
        site = region.provincial_hospital()
    else:
        site = region.city_hospital() if key == "coronary" else region.local_hospital(chart.resident.district)
    department = SPECIALTIES[key]
    return site, department if department in site.departments else "INTM"


def diagnose(chart: Chart, key: str, onset: date) -> None:
    """Put a chronic condition on the problem list, with the visit that found it when recent."""
    disease, resident = DISEASES[key], chart.resident
    if onset < _window_start(chart):
        chart.problem(key, onset, condition(disease, chart.patient, onset, onset,
                                            recorder=resident.family_doctor.as_reference()))
        return
    if key == "stroke":
        stroke(chart, onset)
        return
    if key in SPECIALTIES:
        site, department = _hospital(chart, key)
        visit = chart.visit(site, department, clinic_time(chart.rng, onset), chart.rng.randrange(10, 30))
    else:
        visit = chart.visit(resident.centre, None, clinic_time(chart.rng, onset), chart.rng.randrange(10, 30),
                            resident.family_doctor)
    problem = chart.problem(key, onset, condition(disease, chart.patient, onset, visit.start, encounter=visit.urn,
                                                  recorder=visit.practitioner.as_reference()))
    chart.record(visit, "AMB", "specialist" if key in SPECIALTIES else "symptom", [problem])
    kinds = GENERAL_VITALS + (["oxygen-saturation"] if key in ("copd", "asthma") else [])
    chart.add_all(observations.vital_signs(chart.rng, chart.body, chart.patient, visit, kinds))
    panel = {"diabetes": "diabetes-review", "hyperlipidaemia": "lipids", "coronary": "lipids"}.get(key)
    if panel:
        _labs(chart, visit, panel)
    for drug in chart.regimens[key]:
        chart.prescribe(visit, drug, [problem], days=28, long_term=True)


def stroke(chart: Chart, onset: date) -> None:
    """An ischaemic stroke: emergency visit, admission to neurology, discharge on secondary prevention."""
    rng, site = chart.rng, chart.region.local_hospital(chart.resident.district)
    emergency = chart.visit(site, "EMER", any_time(rng, onset), rng.randrange(180, 480))
    problem = chart.problem("stroke", onset, condition(
        DISEASES["stroke"], chart.patient, emergency.start, emergency.start + timedelta(hours=1),
        encounter=emergency.urn, recorder=emergency.practitioner.as_reference()))
    chart.record(emergency, "EMER", "emergency", [problem])
    chart.add_all(observations.vital_signs(
        rng, chart.body, chart.patient, emergency, ["blood-pressure", "heart-rate", "temperature", "oxygen-saturation"],
        stress=25))
    _labs(chart, emergency, "admission")
    stay = chart.visit(site, "NEUR", emergency.end, rng.randrange(7, 15) * 24 * 60)
    discharge = ("rehab", "Rehabilitation") if rng.random() < 0.15 else ("home", "Home")
    chart.record(stay, "IMP", "admission", [problem] + [p for p in chart.problems_on(onset) if p is not problem],
                 admit_source=("emd", "From accident/emergency department"), discharge=discharge)
    for drug in chart.regimens["stroke"]:
        chart.prescribe(stay, drug, [problem], days=28, long_term=True, category="discharge")


def follow_ups(chart: Chart) -> None:
    """Quarterly family-doctor follow-ups over the last year; the latest kept a booked Appointment,
    and the next one is booked."""
    rng, resident = chart.rng, chart.resident
    first_onset = min(p.onset for p in chart.problems.values())
    days = [chart.anchor - timedelta(days=91 * k + rng.randrange(-10, 11)) for k in (4, 3, 2, 1)]
    days = [d for d in days if d > first_onset + timedelta(days=14)]
    last = None
    for day in days:
        visit = chart.visit(resident.centre, None, clinic_time(rng, day), rng.randrange(10, 25), resident.family_doctor)
        problems = chart.problems_on(day)
        booked = None
        if day == days[-1]:
            booked = chart.add(appointment(visit, "follow-up", chart.patient, problems, status="fulfilled",
                                           created=visit.start - timedelta(days=rng.randrange(60, 90)),
                                           description="慢性病季度随访"))
        chart.record(visit, "AMB", "follow-up", problems, appointment=booked)
        chart.add_all(observations.vital_signs(rng, chart.body, chart.patient, visit, GENERAL_VITALS))
        if chart.body.has("diabetes", day):
            chart.add(observations.lab_result(
                observations.LABS["glucose"], chart.body.lab(rng, "glucose", day), chart.body, chart.patient, visit))
        for drug, reasons in chart.current_drugs(day).items():
            chart.prescribe(visit, drug, reasons, days=84, long_term=True)
        last = visit
    if last:
        next_day = max(last.start.date() + timedelta(days=91), chart.anchor + timedelta(days=rng.randrange(7, 40)))
        start = clinic_time(rng, next_day)
        slot = Visit(None, start, start + timedelta(minutes=15), resident.centre, None, resident.family_doctor,
                     last.nurse)
        chart.add(appointment(slot, "follow-up", chart.patient, chart.problems_on(chart.anchor), status="booked",
                              created=last.end, description="慢性病季度随访"))


def specialist_reviews(chart: Chart) -> None:
    """A yearly review of each specialist-managed condition; COPD flares bring admissions."""
    rng = chart.rng
    for key, problem in list(chart.problems.items()):
        if key not in SPECIALTIES or problem.onset > chart.anchor - timedelta(days=120):
            continue
        site, department = _hospital(chart, key)
        first = max(problem.onset, chart.anchor - timedelta(days=330))
        day = day_between(rng, first, chart.anchor - timedelta(days=30))
        visit = chart.visit(site, department, clinic_time(rng, day), rng.randrange(10, 25))
        chart.record(visit, "AMB", "specialist", [problem.reference])
        kinds = ["blood-pressure", "heart-rate"] + (["oxygen-saturation"] if key in ("copd", "asthma") else [])
        chart.add_all(observations.vital_signs(rng, chart.body, chart.patient, visit, kinds))
        panel = {"diabetes": "diabetes-review", "coronary": "lipids", "stroke": "lipids"}.get(key)
        if panel:
            _labs(chart, visit, panel)
        if key == "coronary" and rng.random() < 0.5:
            start = clinic_time(rng, day + timedelta(days=365))
            slot = Visit(None, start, start + timedelta(minutes=20), site, department, visit.practitioner, visit.nurse)
            chart.add(appointment(slot, "specialist", chart.patient, [problem.reference], status="booked",
                                  created=visit.end, description="冠心病年度复查"))
        if key == "copd" and rng.random() < 0.35:
            copd_admission(chart, problem.onset)


def copd_admission(chart: Chart, onset: date) -> None:
    """A winter admission for an acute exacerbation of COPD."""
    rng = chart.rng
    first = max(onset + timedelta(days=30), _window_start(chart))
    day = _seasonal_day(rng, first, chart.anchor - timedelta(days=15), (12, 1, 2))
    if day is None:
        return
    site, department = _hospital(chart, "copd")
    stay = chart.visit(site, department, any_time(rng, day), rng.randrange(5, 11) * 24 * 60)
    flare = chart.add(condition(DISEASES["copd-exacerbation"], chart.patient, day - timedelta(days=rng.randrange(1, 4)),
                                stay.start, category="encounter-diagnosis", encounter=stay.urn,
                                recorder=stay.practitioner.as_reference(), abated=stay.end))
    chart.record(stay, "IMP", "admission", [{"reference": flare, "display": DISEASES["copd-exacerbation"].chinese}]
                 + chart.problems_on(day), admit_source=("gp", "General Practitioner referral"))
    chart.add_all(observations.vital_signs(
        rng, chart.body, chart.patient, stay, ["blood-pressure", "heart-rate", "temperature", "oxygen-saturation"],
        fever=0.6, acute=True))
    _labs(chart, stay, "admission", infection=True)


def health_check(chart: Chart) -> None:
    """The yearly health check of residents over 65, at their community health centre."""
    rng, resident = chart.rng, chart.resident
    day = day_between(rng, chart.anchor - timedelta(days=200), chart.anchor - timedelta(days=100))
    visit = chart.visit(resident.centre, None, clinic_time(rng, day), rng.randrange(30, 60), resident.family_doctor)
    chart.record(visit, "AMB", "check-up", chart.problems_on(day))
    kinds = ["blood-pressure", "heart-rate", "temperature", "height", "weight", "bmi"]
    chart.add_all(observations.vital_signs(rng, chart.body, chart.patient, visit, kinds))
    _labs(chart, visit, "health-check")


def growth_checks(chart: Chart) -> None:
    """Child health checks on each birthday (and at six months) within the history."""
    rng, resident = chart.rng, chart.resident
    birth = resident.birth_date
    days = [birth + timedelta(days=182)] + [birth.replace(year=birth.year + n) if (birth.month, birth.day) != (2, 29)
                                            else date(birth.year + n, 3, 1) for n in range(1, 7)]
    for day in days:
        if not _window_start(chart) <= day < chart.anchor:
            continue
        visit = chart.visit(resident.centre, None, clinic_time(rng, day), rng.randrange(15, 30))
        chart.record(visit, "AMB", "check-up", [])
        kinds = ["height", "weight", "bmi", "temperature"] + (["blood-pressure"] if resident.age(day) >= 3 else [])
        chart.add_all(observations.vital_signs(rng, chart.body, chart.patient, visit, kinds))


def acute_episodes(chart: Chart) -> None:
    """Colds, influenza and gastroenteritis over the history, in their seasons."""
    rng, resident = chart.rng, chart.resident
    for year in range(HISTORY_YEARS):
        last = chart.anchor - timedelta(days=365 * year + 1)
        first = max(last - timedelta(days=364), _window_start(chart))
        for key, (rates, months) in ACUTE.items():
            age = resident.age(last)
            rate = rates[0 if age < 7 else 1 if age < 18 else 2 if age < 65 else 3]
            for _ in range(sum(rng.random() < rate / 2 for _ in range(2))):
                day = _seasonal_day(rng, first, last, months)
                if day:
                    acute_episode(chart, key, day)


def acute_episode(chart: Chart, key: str, day: date) -> None:
    """One acute illness: a visit, the diagnosis, what was measured, what was prescribed."""
    rng, resident = chart.rng, chart.resident
    emergency = rng.random() < {"urti": 0.2, "influenza": 0.5, "gastroenteritis": 0.3}[key]
    if emergency:
        site = chart.region.local_hospital(resident.district)
        visit = chart.visit(site, "EMER", any_time(rng, day), rng.randrange(60, 240))
    elif key == "influenza":
        site, department = _hospital(chart, key)
        visit = chart.visit(site, department, clinic_time(rng, day), rng.randrange(10, 25))
    else:
        visit = chart.visit(resident.centre, None, clinic_time(rng, day), rng.randrange(8, 20))
    onset = day - timedelta(days=rng.randrange(0, 3))
    abated = visit.start + timedelta(days=rng.randrange(5, 12))
    diagnosis = chart.add(condition(DISEASES[key], chart.patient, onset, visit.start, category="encounter-diagnosis",
                                    encounter=visit.urn, recorder=visit.practitioner.as_reference(),
                                    abated=abated if abated.date() < chart.anchor else None))
    reference = {"reference": diagnosis, "display": DISEASES[key].chinese}
    chart.record(visit, "EMER" if emergency else "AMB", "emergency" if emergency else "symptom", [reference])
    fever = rng.uniform(*FEVER[key])
    kinds = ["temperature", "heart-rate"] + (["blood-pressure"] if resident.age(day) >= 18 else [])
    if key == "influenza" or emergency:
        kinds.append("oxygen-saturation")
    chart.add_all(observations.vital_signs(rng, chart.body, chart.patient, visit, kinds, fever=fever,
                                           acute=key == "influenza"))
    if emergency:
        _labs(chart, visit, "blood-count", infection=key != "gastroenteritis")
    for drug in _regimen(rng, key):
        if drug == "loperamide" and resident.age(day) < 12:
            continue  # not given to young children
        chart.prescribe(visit, drug, [reference], days=5 if key == "influenza" else 3, long_term=False)


def _seasonal_day(rng: random.Random, first: date, last: date, months: tuple[int, ...]) -> date | None:
    """A day in first..last falling in one of the months, or None when there is none."""
    for _ in range(30):
        day = day_between(rng, first, last)
        if day.month in months and first <= day <= last:
            return day
    return None


def _labs(chart: Chart, visit: Visit, panel: str, infection: bool = False) -> None:
    chart.add_all(observations.lab_panel(chart.rng, chart.body, chart.patient, visit, panel, infection))
