"""The institutions of the demo region and the departments and staff each one has.

One regional health authority, a disease-control centre and the medical-insurance payer
oversee six community health centres (primary care and family doctors), four county
hospitals (secondary) and two tertiary hospitals, one of them the provincial hospital in
Hangzhou. Names are made up in the style of real Chinese institutions.
"""
from __future__ import annotations

from dataclasses import dataclass

from ihs.demo.places import DISTRICTS, HANGZHOU, District

_DISTRICT = {d.code: d for d in DISTRICTS + [HANGZHOU]}


@dataclass(frozen=True)
class Department:
    key: str
    name: str
    english: str
    specialty: tuple[str, str]  # SNOMED CT practice specialty (code, display)


DEPARTMENTS = {d.key: d for d in [
    Department("CARD", "心血管内科", "Cardiology", ("394579002", "Cardiology")),
    Department("ENDO", "内分泌科", "Endocrinology", ("394583002", "Endocrinology")),
    Department("RESP", "呼吸与危重症医学科", "Pulmonary and Critical Care Medicine", ("418112009", "Pulmonary medicine")),
    Department("NEUR", "神经内科", "Neurology", ("394591006", "Neurology")),
    Department("GAST", "消化内科", "Gastroenterology", ("394584008", "Gastroenterology")),
    Department("EMER", "急诊科", "Emergency Department", ("394576009", "Surgical-Accident & emergency")),
    Department("INTM", "内科", "Internal Medicine", ("419192003", "Internal medicine")),
]}
FAMILY_PRACTICE = ("419772000", "Family practice")


@dataclass(frozen=True)
class Facility:
    code: str  # the region's registry code, the Organization's identifier
    name: str
    english: str
    kind: str  # authority | cdc | payer | community | secondary | tertiary
    district: District
    street: str
    line: str
    departments: tuple[str, ...] = ()

    @property
    def provides_care(self) -> bool:
        return self.kind in ("community", "secondary", "tertiary")


def _facility(code, name, english, kind, district_code, street, line, departments=()):
    return Facility(code, name, english, kind, _DISTRICT[district_code], street, line, tuple(departments))


TERTIARY_DEPARTMENTS = ("CARD", "ENDO", "RESP", "NEUR", "GAST", "EMER")
SECONDARY_DEPARTMENTS = ("INTM", "NEUR", "RESP", "EMER")

FACILITIES = [
    _facility("HZ-WJW", "湖州市卫生健康委员会", "Huzhou Municipal Health Commission", "authority",
              "330502", "爱山街道", "人民路71号"),
    _facility("HZ-CDC", "湖州市疾病预防控制中心", "Huzhou Center for Disease Control and Prevention", "cdc",
              "330502", "飞英街道", "凤凰路999号"),
    _facility("HZ-YBJ", "湖州市医疗保障局", "Huzhou Healthcare Security Administration", "payer",
              "330502", "爱山街道", "府前路1号"),
    _facility("ZJ-RHH", "浙江省仁和医院", "Zhejiang Renhe Provincial Hospital", "tertiary",
              "330102", "湖滨街道", "解放路158号", TERTIARY_DEPARTMENTS),
    _facility("HZ-NTH", "湖州市南太湖医院", "Huzhou South Taihu Hospital", "tertiary",
              "330502", "月河街道", "红旗路198号", TERTIARY_DEPARTMENTS),
    _facility("NX-RMYY", "湖州市南浔区人民医院", "Nanxun District People's Hospital", "secondary",
              "330503", "南浔镇", "人瑞路88号", SECONDARY_DEPARTMENTS),
    _facility("DQ-RMYY", "德清县人民医院", "Deqing County People's Hospital", "secondary",
              "330521", "武康街道", "英溪北路120号", SECONDARY_DEPARTMENTS),
    _facility("CX-RMYY", "长兴县人民医院", "Changxing County People's Hospital", "secondary",
              "330522", "雉城街道", "太湖中路66号", SECONDARY_DEPARTMENTS),
    _facility("AJ-RMYY", "安吉县人民医院", "Anji County People's Hospital", "secondary",
              "330523", "递铺街道", "胜利西路21号", SECONDARY_DEPARTMENTS),
    _facility("WX-ASCHC", "吴兴区爱山街道社区卫生服务中心", "Aishan Community Health Centre", "community",
              "330502", "爱山街道", "新华路36号"),
    _facility("WX-FYCHC", "吴兴区飞英街道社区卫生服务中心", "Feiying Community Health Centre", "community",
              "330502", "飞英街道", "青年路12号"),
    _facility("NX-NXCHC", "南浔区南浔镇社区卫生服务中心", "Nanxun Town Community Health Centre", "community",
              "330503", "南浔镇", "南林路8号"),
    _facility("DQ-WKCHC", "德清县武康街道社区卫生服务中心", "Wukang Community Health Centre", "community",
              "330521", "武康街道", "文化路45号"),
    _facility("CX-ZCCHC", "长兴县雉城街道社区卫生服务中心", "Zhicheng Community Health Centre", "community",
              "330522", "雉城街道", "建设路102号"),
    _facility("AJ-DPCHC", "安吉县递铺街道社区卫生服务中心", "Dipu Community Health Centre", "community",
              "330523", "递铺街道", "昌硕东路30号"),
]

# (role, head count) by unit: a community health centre, each hospital department, each hospital
STAFFING = {
    "community": [("doctor", 3), ("nurse", 2), ("pharmacist", 1)],
    "department": [("doctor", 2), ("nurse", 1)],
    "hospital": [("pharmacist", 1)],
}
