"""The geography of the demo region: Huzhou, a prefecture-level city in northern Zhejiang.

Area codes are the GB/T 2260 codes of the real districts and counties; streets, roads and
house numbers are drawn from common names. Birthplaces elsewhere in China give the
resident ID numbers of people who moved to the region.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class District:
    code: str  # GB/T 2260 area code
    province: str
    city: str
    name: str
    postal_code: str
    streets: tuple[str, ...]
    latitude: float
    longitude: float


PROVINCE = "浙江省"
CITY = "湖州市"

DISTRICTS = [
    District("330502", PROVINCE, CITY, "吴兴区", "313000", ("爱山街道", "飞英街道", "月河街道", "朝阳街道"), 30.868, 120.094),
    District("330503", PROVINCE, CITY, "南浔区", "313009", ("南浔镇", "练市镇", "双林镇"), 30.850, 120.418),
    District("330521", PROVINCE, CITY, "德清县", "313200", ("武康街道", "新市镇", "乾元镇"), 30.543, 119.977),
    District("330522", PROVINCE, CITY, "长兴县", "313100", ("雉城街道", "画溪街道", "泗安镇"), 31.026, 119.911),
    District("330523", PROVINCE, CITY, "安吉县", "313300", ("递铺街道", "孝丰镇", "天子湖镇"), 30.638, 119.680),
]
# the provincial capital, seat of the provincial hospital
HANGZHOU = District("330102", PROVINCE, "杭州市", "上城区", "310002", ("湖滨街道", "清波街道"), 30.242, 120.169)

# where residents born outside the region got their ID numbers, with their share among movers
BIRTHPLACES = [
    (District("341202", "安徽省", "阜阳市", "颍州区", "236000", (), 32.89, 115.81), 3),
    (District("361102", "江西省", "上饶市", "信州区", "334000", (), 28.45, 117.97), 2),
    (District("411502", "河南省", "信阳市", "浉河区", "464000", (), 32.12, 114.06), 2),
    (District("320509", "江苏省", "苏州市", "吴江区", "215200", (), 31.16, 120.64), 2),
    (District("511302", "四川省", "南充市", "顺庆区", "637000", (), 30.80, 106.08), 1),
    (HANGZHOU, 2),
]

ROADS = ["人民路", "解放路", "中山路", "建设路", "文化路", "新华路", "青年路", "湖滨路", "环城路", "府前路",
         "朝阳路", "育才路", "凤凰路", "红旗路", "南街", "北街"]


def draw_birthplace(rng: random.Random, home: District) -> District:
    """Where a resident's ID number was issued: mostly their home district, else somewhere else."""
    if rng.random() < 0.8:
        return home
    if rng.random() < 0.5:
        return rng.choice(DISTRICTS)
    return rng.choices([d for d, _ in BIRTHPLACES], weights=[w for _, w in BIRTHPLACES])[0]


def address(district: District, street: str, line: str, use: str = "home") -> dict:
    """A FHIR Address written the Chinese way, from province down to the house."""
    return {
        "use": use,
        "type": "both",
        "text": f"{district.province}{district.city}{district.name}{street}{line}",
        "line": [street, line],
        "city": district.city,
        "district": district.name,
        "state": district.province,
        "postalCode": district.postal_code,
        "country": "CN",
    }


def draw_home(rng: random.Random, district: District) -> tuple[str, dict]:
    """A home address in the district, with the street (subdistrict or town) it lies in."""
    street = rng.choice(district.streets)
    line = f"{rng.choice(ROADS)}{rng.randrange(1, 400)}号"
    if rng.random() < 0.7:  # most urban households live in a flat
        line += f"{rng.randrange(1, 30)}幢{rng.randrange(1, 5)}单元{rng.randrange(1, 19)}{rng.randrange(1, 5):02d}室"
    return street, address(district, street, line)
