"""Regenerate the sample documents and their ground truth (deterministic).

    .venv/bin/python samples/make_samples.py

Writes next to this file: english-prose.pdf, chinese-prose.pdf, table.png,
bar-chart.png, scan-photo.jpg, and truth/<stem>/<page>.txt (pages from 1), the
exact text rendered on each page, one line per rendered line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tessera import synthetic  # noqa: E402

ENGLISH = [
    "Chapter 1. The lighthouse keepers of the northern coast kept careful logs. Every "
    "evening at sunset they lit the lamp, wound the clockwork that turned the lens, and "
    "wrote the time, the wind and the state of the sea into a ledger bound in green cloth. "
    "Those ledgers, some of them two hundred years old, are now read by climate scientists "
    "who want to know how storms have changed along the coast.",
    "The entries are short but regular. On 14 November 1872 the keeper at Skerry Point "
    "wrote that the wind rose to a full gale from the south-west at 9 p.m., that the glass "
    "fell by 0.62 inches in six hours, and that a schooner of about 140 tons was seen "
    "running for shelter. Thousands of such lines, once copied, become a record of weather "
    "that no instrument on land could have made.",
    "A keeper's day was long. He rose before dawn to put out the lamp, trimmed the wicks, "
    "polished the brass and the glass, and carried oil up 112 steps in two heavy cans. In "
    "the afternoon he painted, mended the boat or tended a small garden behind the wall. "
    "Supplies came by sea once a fortnight, weather permitting, and in a bad winter the "
    "station could be cut off for six or seven weeks at a time.",
    "Most stations were run by two or three families who shared the watches. Children "
    "were taught at the kitchen table, and a visiting teacher came twice a year to set "
    "examinations. Several of the ledgers carry small drawings in the margins: a seal on "
    "the rocks, a ship under full sail, a child's attempt at the letter Q.",
    "Copying them is slow work. The handwriting changes with every keeper, the ink has "
    "faded, and the pages were often written by candle light in a hurry. Volunteers who "
    "transcribe the ledgers learn to recognise each hand, and they argue over doubtful "
    "words in long threads. A single volume of 300 pages takes a team of four about three "
    "weeks.",
    "Chapter 2. Machines now help with the first pass. A page is photographed, the lines "
    "of text are found, and a recognition model proposes a reading of each line. People "
    "then correct the proposals instead of typing from nothing, which is roughly five times "
    "faster. The hard part is not the reading itself but knowing when the machine is wrong, "
    "because a confident mistake in a number can move a storm by a whole day.",
    "For this reason every transcription keeps the image it came from. A reader who doubts "
    "a figure can open the page, look at the ink, and decide for herself. The archive "
    "stores 41,806 page images today, at 300 dots per inch, which is about 2.3 terabytes "
    "of data, and it grows by a few hundred pages every week.",
    "The photographs are taken on a simple copy stand with two lamps at 45 degrees, so "
    "that the paper shows no glare. Each image is named after the station, the volume and "
    "the page, for example SKP-07-0213, and a checksum is stored beside it. Nothing is "
    "ever overwritten: a corrected reading is added as a new version with the name of the "
    "person who made it and the date.",
    "Numbers get special care. Pressure readings, wind forces on the Beaufort scale and "
    "times of day are checked against their neighbours, and a value that jumps too far "
    "from the one before is flagged for a second reader. About 3 percent of all readings "
    "are flagged this way, and roughly one in five of those turns out to be a real error.",
    "Chapter 3. What did the ledgers reveal? Storms in the 1880s were not stronger than "
    "those of recent decades, but they came later in the year, and they were followed by "
    "long calm spells that the keepers described as oppressive. Fishermen knew this pattern "
    "well; the ledgers simply wrote it down.",
    "The records also show how the coast itself changed. Sand banks moved, a harbour "
    "silted up and was abandoned in 1911, and a new channel was dredged further east. "
    "Keepers noted each change because it altered the courses that ships had to steer, "
    "and their notes now help engineers to plan sea defences for the next hundred years.",
    "The last keepers left in the 1990s, when the lights became automatic. Their ledgers "
    "went to the county archive in 214 wooden boxes. Old records, read carefully and "
    "shared openly, still have things to teach us about the present, and about the people "
    "who watched the sea so closely for so long.",
]

LETTER = [
    "Dear Ms. Alvarez, thank you for your letter of 3 June about the repair of the north "
    "wall. Our surveyor visited the site on Tuesday and measured a crack of 7 millimetres "
    "running from the window to the foundation. She believes the cause is water draining "
    "from the roof, not movement of the ground, which is good news.",
    "We propose to replace the gutter, seal the crack with lime mortar and inspect the wall "
    "again after the winter. The work should take four days and cost about 2,150 euros, "
    "including scaffolding. Please call our office on 0161 496 0732 if you would like to "
    "discuss the plan before we order the materials. Yours sincerely, Thomas Reed.",
]

CHINESE = [
    "清晨的江南小镇总是被一层薄雾笼罩。石板路上还留着昨夜的雨水，早起的老人提着竹篮去集市买菜，"
    "卖豆腐的小贩已经摆好了摊子。河边的柳树垂下细长的枝条，偶尔有一只白鹭从水面掠过。",
    "这座小镇有八百多年的历史，镇上保存着三十六座古桥和一百二十多处明清时期的老宅。"
    "每年春天，成千上万的游客来到这里，他们喜欢坐在茶馆里喝一杯绿茶，听当地人讲述过去的故事。",
    "小镇的居民大多以养蚕和织布为生。过去，几乎每户人家都有一台木制织机，"
    "清脆的织布声从早到晚在街巷里回响。如今，老织机大多被收进了博物馆，"
    "但仍有几位老师傅坚持手工织造，他们织出的丝绸花纹细密，颜色柔和。",
    "镇上的图书馆正在把旧报纸和地方志扫描成电子文件。工作人员说，计算机可以自动识别大部分文字，"
    "但是模糊的页面仍然需要人工校对。到去年年底，他们已经完成了两万四千页的整理工作。",
    "馆长告诉我们，这些资料记录了小镇一百多年来的天气、物价和重大事件。"
    "研究人员可以从中了解当年的米价如何变化，哪一年发生过洪水，哪一座桥曾经重修。"
    "她希望明年能把全部资料放到网上，让更多的人免费查阅。",
    "傍晚时分，夕阳把河水染成了金色。游船慢慢划过古桥，船娘唱起了当地的小调。"
    "街边的小店陆续亮起了灯笼，空气中飘来桂花糕和酱鸭的香味。",
]


def write_truth(stem: str, pages: list[list[str]]) -> None:
    folder = HERE / "truth" / stem
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):
        old.unlink()
    for number, lines in enumerate(pages, start=1):
        (folder / f"{number}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def paragraphs_to_lines(paragraphs: list[str], lang: synthetic.Lang, font_size: int) -> list[str]:
    return [line for p in paragraphs for line in synthetic.wrap_text(p, lang, font_size)]


def english_prose() -> None:
    pages = [paragraphs_to_lines(ENGLISH[i : i + 4], "en", 32) for i in (0, 4, 8)]
    images = [synthetic.render_text_page(lines, font_size=32) for lines in pages]
    (HERE / "english-prose.pdf").write_bytes(synthetic.make_pdf(images))
    write_truth("english-prose", pages)


def chinese_prose() -> None:
    lines = paragraphs_to_lines(CHINESE, "zh", 40)
    half = (len(lines) + 1) // 2
    pages = [lines[:half], lines[half:]]
    images = [synthetic.render_text_page(p, font_size=40, lang="zh") for p in pages]
    (HERE / "chinese-prose.pdf").write_bytes(synthetic.make_pdf(images))
    write_truth("chinese-prose", pages)


def table_and_chart() -> None:
    table, table_truth = synthetic.render_table_page(seed=0)
    table.save(HERE / "table.png", optimize=True)
    write_truth("table", [table_truth.lines])
    chart, chart_truth = synthetic.render_bar_chart_page(seed=0)
    chart.quantize(16, dither=Image.Dither.NONE).save(HERE / "bar-chart.png", optimize=True)
    write_truth("bar-chart", [chart_truth.lines])


def scan_photo() -> None:
    lines = paragraphs_to_lines(LETTER, "en", 32)
    photo = synthetic.photo_scan(synthetic.render_text_page(lines, font_size=32), seed=7, angle=1.5)
    photo.save(HERE / "scan-photo.jpg", quality=80)
    write_truth("scan-photo", [lines])


if __name__ == "__main__":
    english_prose()
    chinese_prose()
    table_and_chart()
    scan_photo()
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"samples written to {HERE} ({total / 1e6:.2f} MB in all)")
