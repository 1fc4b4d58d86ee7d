"""Chinese personal names in hanzi and Hanyu Pinyin, drawn by sex and birth cohort.

Pinyin comes from the tables below rather than a converter: each character is listed
with the reading it has in names (单 as a surname is Shan, 曾 is Zeng), so the pinyin is
right by construction. Pinyin is written without tone marks, as on passports and cards.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ihs.demo.codes import REPRESENTATION

# (surname, pinyin, relative frequency), weighted toward the surnames of northern Zhejiang
SURNAMES = [
    ("王", "Wang", 7), ("陈", "Chen", 7), ("张", "Zhang", 5), ("李", "Li", 5), ("吴", "Wu", 4),
    ("周", "Zhou", 4), ("徐", "Xu", 4), ("沈", "Shen", 4), ("朱", "Zhu", 3), ("杨", "Yang", 3),
    ("刘", "Liu", 3), ("黄", "Huang", 3), ("钱", "Qian", 2), ("金", "Jin", 2), ("姚", "Yao", 2),
    ("陆", "Lu", 2), ("孙", "Sun", 2), ("胡", "Hu", 2), ("俞", "Yu", 1.5), ("施", "Shi", 1.5),
    ("潘", "Pan", 1.5), ("蒋", "Jiang", 1.5), ("许", "Xu", 1.5), ("叶", "Ye", 1.5), ("郑", "Zheng", 1.5),
    ("费", "Fei", 1), ("方", "Fang", 1), ("何", "He", 1), ("高", "Gao", 1), ("马", "Ma", 1),
    ("林", "Lin", 1), ("曹", "Cao", 1), ("汤", "Tang", 1), ("丁", "Ding", 1), ("邱", "Qiu", 1),
    ("程", "Cheng", 1), ("邵", "Shao", 1), ("单", "Shan", 0.5), ("曾", "Zeng", 0.5), ("闵", "Min", 0.5),
    ("欧阳", "Ouyang", 0.2),
]


def _pool(table: str) -> list[tuple[str, str]]:
    """Parse "字zi 名ming" into [("字", "zi"), ("名", "ming")]."""
    return [(item[0], item[1:]) for item in table.split()]


# given-name characters by (cohort, sex): names follow the fashions of their decade
GIVEN = {
    ("before-1960", "male"): _pool("建jian 国guo 华hua 明ming 德de 福fu 根gen 生sheng 荣rong 庆qing "
                                   "水shui 金jin 林lin 祥xiang 忠zhong 强qiang 山shan 海hai 富fu 宝bao"),
    ("before-1960", "female"): _pool("秀xiu 英ying 兰lan 珍zhen 芳fang 凤feng 桂gui 玉yu 梅mei 花hua "
                                     "琴qin 娣di 美mei 月yue 菊ju 莲lian 素su 淑shu 云yun 霞xia"),
    ("1960-1989", "male"): _pool("伟wei 强qiang 军jun 勇yong 斌bin 杰jie 涛tao 磊lei 鹏peng 辉hui "
                                 "刚gang 峰feng 波bo 平ping 东dong 文wen 志zhi 明ming 建jian 亮liang"),
    ("1960-1989", "female"): _pool("丽li 敏min 静jing 艳yan 娟juan 霞xia 燕yan 红hong 芳fang 玲ling "
                                   "萍ping 洁jie 英ying 慧hui 琴qin 雪xue 莉li 颖ying 晓xiao 华hua"),
    ("1990-on", "male"): _pool("浩hao 宇yu 轩xuan 子zi 博bo 晨chen 泽ze 俊jun 杰jie 宁ning "
                               "睿rui 铭ming 昊hao 然ran 一yi 天tian 辰chen 诚cheng 皓hao 鑫xin"),
    ("1990-on", "female"): _pool("欣xin 怡yi 梓zi 涵han 萱xuan 雨yu 诗shi 琪qi 佳jia 悦yue "
                                 "可ke 馨xin 婷ting 思si 语yu 彤tong 瑶yao 依yi 安an 若ruo"),
}


def cohort(birth_year: int) -> str:
    """The naming cohort of a birth year."""
    if birth_year < 1960:
        return "before-1960"
    return "1960-1989" if birth_year < 1990 else "1990-on"


def join_pinyin(syllables: list[str]) -> str:
    """Write syllables as one capitalised word, with the apostrophe before a/o/e (Yi'an)."""
    word = ""
    for i, syllable in enumerate(syllables):
        if i and syllable[0] in "aoe":
            word += "'"
        word += syllable
    return word[:1].upper() + word[1:]


@dataclass(frozen=True)
class ChineseName:
    family: str
    given: str
    family_pinyin: str
    given_pinyin: str

    @property
    def text(self) -> str:
        return self.family + self.given

    @property
    def pinyin_text(self) -> str:
        return f"{self.family_pinyin} {self.given_pinyin}"


def draw_name(rng: random.Random, gender: str, birth_year: int) -> ChineseName:
    """A plausible name for a person of this sex ("male"/"female") born in this year."""
    family, family_pinyin, _ = rng.choices(SURNAMES, weights=[w for *_, w in SURNAMES])[0]
    pool = GIVEN[(cohort(birth_year), gender)]
    one_character = rng.random() < (0.35 if birth_year >= 1970 and birth_year < 2000 else 0.15)
    if one_character:
        chars = [rng.choice(pool)]
    elif gender == "female" and rng.random() < 0.05:
        chars = [rng.choice(pool)] * 2  # reduplicated names such as 婷婷
    else:
        chars = rng.sample(pool, 2)
    given = "".join(c for c, _ in chars)
    return ChineseName(family, given, family_pinyin, join_pinyin([p for _, p in chars]))


def human_names(name: ChineseName) -> list[dict]:
    """The official name twice: in hanzi (ideographic) and in pinyin (alphabetic)."""
    return [
        {"extension": [{"url": REPRESENTATION, "valueCode": "IDE"}], "use": "official",
         "text": name.text, "family": name.family, "given": [name.given]},
        {"extension": [{"url": REPRESENTATION, "valueCode": "ABC"}], "use": "official",
         "text": name.pinyin_text, "family": name.family_pinyin, "given": [name.given_pinyin]},
    ]
