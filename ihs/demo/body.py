"""What a resident measures at a visit: growth, vital signs and lab values.

Values follow Chinese population norms (growth charts, adult means) and move with the
resident's age, sex and the chronic conditions they have by the day of the measurement;
each measurement adds visit-to-visit noise. Chronic conditions are taken as treated, so
values sit near the treatment targets.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

# (age in years, male, female) medians of height (cm) and BMI (kg/m2) for children and adolescents
HEIGHT = [(0, 50, 49), (0.5, 68, 66), (1, 76, 75), (2, 88, 87), (3, 96, 95), (4, 104, 103), (5, 111, 110),
          (6, 117, 116), (8, 130, 129), (10, 140, 141), (12, 152, 151), (14, 165, 157), (16, 171, 159),
          (18, 172, 160)]
CHILD_BMI = [(0, 13.4, 13.3), (0.5, 17.3, 17.0), (1, 16.8, 16.4), (2, 16.0, 15.7), (4, 15.4, 15.2),
             (6, 15.5, 15.2), (8, 16.3, 15.8), (10, 17.4, 17.0), (12, 18.5, 18.2), (14, 19.6, 19.4),
             (16, 20.5, 20.4), (18, 21.4, 20.9)]

# (mean, standard deviation) of lab values with no relevant condition
LAB_NORMS = {
    "glucose": (5.1, 0.45), "hba1c": (5.4, 0.3), "cholesterol": (4.8, 0.7), "ldl": (2.8, 0.6),
    "triglycerides": (1.3, 0.45), "alt": (22, 8),
}


def _interpolate(table: list[tuple[float, float, float]], age: float, gender: str) -> float:
    column = 1 if gender == "male" else 2
    if age >= table[-1][0]:
        return table[-1][column]
    for low, high in zip(table, table[1:]):
        if low[0] <= age < high[0]:
            share = (age - low[0]) / (high[0] - low[0])
            return low[column] + share * (high[column] - low[column])
    return table[0][column]


def age_on(birth_date: date, on: date) -> float:
    """Age in years (fractional) on a day."""
    return (on - birth_date).days / 365.25


@dataclass(frozen=True)
class Body:
    gender: str
    birth_date: date
    onsets: dict[str, date]  # chronic condition -> the day it began
    height_z: float
    bmi_delta: float
    pressure_delta: float

    @classmethod
    def draw(cls, rng: random.Random, gender: str, birth_date: date, onsets: dict[str, date]) -> Body:
        """A body for the resident; metabolic conditions come with a heavier build."""
        heavier = 1.8 if onsets.keys() & {"hypertension", "diabetes", "hyperlipidaemia"} else 0.0
        return cls(gender, birth_date, dict(onsets), rng.gauss(0, 1), rng.gauss(heavier, 2.8), rng.gauss(0, 7))

    def has(self, condition: str, on: date) -> bool:
        """Whether the condition had begun by that day."""
        return condition in self.onsets and self.onsets[condition] <= on

    def height(self, on: date) -> float:
        age = age_on(self.birth_date, on)
        median = _interpolate(HEIGHT, age, self.gender)
        if age >= 18 and self.birth_date.year < 1960:
            median -= 4  # older cohorts grew up shorter
        spread = 6.0 if age >= 18 else 0.04 * median
        return round(median + self.height_z * spread, 1)

    def bmi(self, on: date) -> float:
        age = age_on(self.birth_date, on)
        if age < 18:
            return round(_interpolate(CHILD_BMI, age, self.gender) * (1 + self.bmi_delta / 40), 1)
        return round(min(max(23.3 + self.bmi_delta, 16.5), 38.0), 1)

    def weight(self, on: date) -> float:
        return round(self.bmi(on) * (self.height(on) / 100) ** 2, 1)

    def blood_pressure(self, rng: random.Random, on: date, stress: float = 0) -> tuple[int, int]:
        """Systolic and diastolic pressure (mm[Hg]); `stress` raises them (pain, an acute stroke)."""
        age = age_on(self.birth_date, on)
        if age < 18:
            systolic = 88 + 1.6 * age
        else:
            systolic = 112 + 0.45 * max(0.0, age - 30) + (4 if self.gender == "male" else 0)
            if self.has("hypertension", on):
                systolic += 14
        systolic += self.pressure_delta + rng.gauss(0, 6) + stress
        diastolic = 0.55 * systolic + 8 - 0.15 * max(0.0, age - 60) + rng.gauss(0, 4)
        return round(systolic), round(diastolic)

    def heart_rate(self, rng: random.Random, on: date, fever: float = 0) -> int:
        age = age_on(self.birth_date, on)
        rate = 130 - 5 * age if age < 10 else 74
        return round(rate + 10 * fever + rng.gauss(0, 7))

    def temperature(self, rng: random.Random, fever: float = 0) -> float:
        return round(36.5 + fever + rng.gauss(0, 0.2), 1)

    def oxygen_saturation(self, rng: random.Random, on: date, acute: bool = False) -> int:
        level = 94.0 if self.has("copd", on) else 98.0
        if acute:
            level -= 3
        return min(100, round(level + rng.gauss(0, 1)))

    def lab(self, rng: random.Random, test: str, on: date, infection: bool = False) -> float:
        """A lab value for one of the tests of ihs.demo.observations.LABS."""
        male = self.gender == "male"
        diabetic = self.has("diabetes", on)
        lipids = diabetic or self.has("hyperlipidaemia", on)
        child = age_on(self.birth_date, on) < 12
        if test == "glucose" and diabetic:
            mean, sd = 7.6, 1.4
        elif test == "hba1c" and diabetic:
            mean, sd = 7.2, 0.8
        elif test == "creatinine":
            mean, sd = (76, 11) if male else (57, 8)
            if age_on(self.birth_date, on) > 70 or diabetic:
                mean += 8
        elif test == "hemoglobin":
            mean, sd = (125, 8) if child else (146, 10) if male else (128, 9)
        elif test == "wbc":
            mean, sd = ((13.0, 2.5) if child else (11.0, 2.0)) if infection else ((8.0, 2.0) if child else (6.3, 1.3))
        else:
            mean, sd = LAB_NORMS[test]
            if lipids and test in ("cholesterol", "ldl", "triglycerides"):
                mean *= 1.2
        return max(rng.gauss(mean, sd), mean / 3)
