"""The pages in five languages: catalogues complete and in step with the code, CLDR names and
formats, every page of a sample run in every language in Chromium (offline, no script error,
the page's own words in that language; screenshots in tests/report/), the brief as a PDF.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from telemetry.outputs.i18n import LANGS, Page, catalogue_path, lang

from .test_map_browser import CHROMIUM, REPORT, _chromium, _script_errors, _status

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "telemetry" / "data" / "locale"
OTHERS = [c for c in LANGS if c != "en"]


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def _code_messages() -> set[str | tuple[str, str]]:
    """Every message the code marks (gettext, ngettext, N_), as pybabel extracts them."""
    found = set()
    keywords = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2), "n_": (1, 2)}
    for _file, _line, msg, _comments, _ctx in extract_from_dir(
            str(ROOT / "telemetry" / "outputs"), method_map=[("**.py", "python")], keywords=keywords):
        found.add(msg if isinstance(msg, str) else tuple(msg))
    return found


def test_template_is_in_step_with_the_code() -> None:
    """telemetry.pot holds exactly the messages the code marks (re-extract: see locale/babel.cfg)."""
    with (LOCALE / "telemetry.pot").open("rb") as f:
        pot = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    assert pot == _code_messages()


@pytest.mark.parametrize("code", OTHERS)
def test_catalogue_translates_every_message_with_the_same_placeholders(code: str) -> None:
    with (LOCALE / "telemetry.pot").open("rb") as f:
        pot = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    with catalogue_path(code).open("rb") as f:
        cat = read_po(f, locale=code)
    assert not cat.fuzzy
    seen = set()
    for m in cat:
        if not m.id:
            continue
        key = m.id if isinstance(m.id, str) else tuple(m.id)
        seen.add(key)
        assert "fuzzy" not in m.flags, key
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        assert len(strings) == cat.num_plurals if isinstance(m.id, tuple) else 1, key
        for s in strings:
            assert s.strip(), f"{code}: untranslated {key!r}"
            # a translation may drop {n} in a singular form ("day"), never add an unknown field
            assert _fields(s) <= set().union(*map(_fields, ids)), (key, s)
            if isinstance(m.id, str):
                assert _fields(s) == _fields(m.id), (key, s)
    assert seen == pot


@pytest.mark.parametrize("code", OTHERS)
def test_every_translation_formats_and_is_in_its_script(code: str) -> None:
    """Each message formats with its placeholders filled, and is written in the language's script
    (Cyrillic for ru/kk/ky, Han for zh) unless it is only codes and symbols (``A → B``)."""
    t = lang(code)
    with catalogue_path(code).open("rb") as f:
        cat = read_po(f, locale=code)
    letters = re.compile(r"[\u0400-\u04FF]" if code != "zh" else r"[\u4e00-\u9fff]")
    for m in cat:
        if not m.id:
            continue
        one = m.id if isinstance(m.id, str) else m.id[1]
        out = t.gettext(m.id) if isinstance(m.id, str) else t.ngettext(m.id[0], m.id[1], 5)
        filled = out.format(**{f: "X" for f in _fields(one)})
        if re.search(r"[A-Za-z]{3,}", re.sub(r"\{\w+\}", " ", one)):  # English words, not only codes
            assert letters.search(filled), (code, one, filled)


def test_plural_forms_follow_each_language() -> None:
    """Russian has three forms (1 пересечение, 2 пересечения, 5 пересечений, 21 пересечение),
    Kazakh/Kyrgyz a number with a singular noun, Chinese one form."""
    ru = lang("ru")
    forms = {n: ru.ngettext("{n} crossing", "{n} crossings", n).format(n=n) for n in (1, 2, 5, 11, 21, 22)}
    assert forms == {1: "1 пересечение", 2: "2 пересечения", 5: "5 пересечений", 11: "11 пересечений",
                     21: "21 пересечение", 22: "22 пересечения"}
    assert lang("kk").ngettext("{n} crossing", "{n} crossings", 3).format(n=3) == "3 қиылысу"
    assert lang("zh").ngettext("{n} crossing", "{n} crossings", 3).format(n=3) == "3 次越境"


def test_country_names_come_from_cldr_for_every_bundled_country() -> None:
    from babel import Locale

    from telemetry.corridor.borders import load_countries

    countries = load_countries()
    # every unit with an ISO 3166 code is named from CLDR (Natural Earth's other units, e.g.
    # Baikonur or the Siachen Glacier, keep its English name); ATC carries Australia's number
    iso = countries[countries["iso_n3"].notna() & (countries["iso_a3"] != "ATC")]
    assert len(iso) >= 230
    for code in LANGS:
        t = lang(code)
        unnamed = [a3 for a3 in iso["iso_a3"] if t.country(a3, None) == a3]
        assert unnamed == [], (code, unnamed)
    assert lang("ru").country("XKX") == "Косово"
    assert lang("kk").country("KGZ") == Locale("kk").territories["KG"] == "Қырғызстан"
    assert lang("zh").country("398") == "哈萨克斯坦"  # ISO numeric
    assert lang("ru").country("ZZZ", "Protected area 7") == "Protected area 7"  # a user's zone


def test_numbers_and_months_follow_the_locale() -> None:
    assert lang("en").number(12345.678, 1) == "12,345.7"
    assert lang("ru").number(12345.678, 1) == "12\xa0345,7"
    assert lang("kk").decimal(0.1) == "0,1"
    assert lang("zh").month("2022-11") == "2022年11月"
    assert lang("ru").percent(0.07) == "7\xa0%"


def test_a_page_carries_every_language_and_escapes_it() -> None:
    page = Page("ky")
    html = page.text(lambda t: t.gettext("Corridors") + " <&>")
    data = json.loads(re.search(r'data-tr="([^"]*)"', html).group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert set(data) == set(LANGS)
    assert data["ky"] == "Коридорлор &lt;&amp;&gt;" and ">Коридорлор &lt;&amp;&gt;<" in html
    assert page.text(lambda t: "42") == "<span>42</span>"  # nothing to switch
    with pytest.raises(Exception, match="unknown language"):
        Page("fr")


def test_lang_is_checked_before_anything_is_read(tmp_path: Path) -> None:
    import subprocess
    import sys

    for args, says in ((["--lang", "fr"], "'fr' is not one of"), (["--set", "pages.lang=de"], "pages.lang")):
        res = subprocess.run([sys.executable, "-m", "telemetry", "run", *args, "-o", str(tmp_path / "out")],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and says in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) <= 3  # one error line (+ click usage)
    assert not (tmp_path / "out").exists()


# --- the sample run, every page in every language ------------------------------------------------

@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    from telemetry.pipeline import run

    out = tmp_path_factory.mktemp("i18n") / "out"
    run(None, out, overrides=["pages.lang=ru", "public.min_animals=1", "corridors.methods=footprint"])
    return out


TITLES = {"brief.html": "Border brief: where and when the collared animals cross",
          "public.html": "Cross-border movements: corridors and crossing places",
          "index.html": "Collar telemetry summary",
          "map.html": "Collar telemetry: tracks and cross-border corridors"}


def test_run_writes_pages_opening_in_the_chosen_language(sample_run: Path) -> None:
    ru = lang("ru")
    for name, title in TITLES.items():
        text = (sample_run / name).read_text(encoding="utf-8")
        assert '<html lang="ru">' in text, name
        assert ru.gettext(title) in text, name
        for code in LANGS:  # every language rides along for the switch
            assert lang(code).gettext(title) in text or json.dumps(lang(code).gettext(title))[1:-1] in text, (name, code)
    brief = (sample_run / "brief.html").read_text(encoding="utf-8")
    assert "Казахстан" in brief and "Қазақстан" in brief and "哈萨克斯坦" in brief
    meta = json.loads((sample_run / "public.geojson").read_text(encoding="utf-8"))["telemetry"]
    assert meta["study"] and re.fullmatch(r"\d{4}-\d\d", meta["period"]["first"])
    # provenance in the pages, from the same metadata
    for name in ("brief.html", "public.html"):
        text = (sample_run / name).read_text(encoding="utf-8")
        assert meta["study"] in text and meta["licence"] in text and meta["tool_version"] in text, name


def test_brief_pdf_is_the_brief_in_its_language(sample_run: Path, tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    from telemetry.outputs.brief import cjk_font, write_brief_pdf

    pdf = sample_run / "brief.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(pdf).pages)
    squash = re.sub(r"\s+", " ", text)
    assert "Справка по границам" in squash and "Казахстан" in squash
    blocks = [("h1", lang("kk").gettext(TITLES["brief.html"])), ("p", "Қазақстан – Қырғызстан: 3 қиылысу"),
              ("table", ["ай", "KAZ → KGZ"], [["Маусым 2021", "1"]], {1})]
    a, b = write_brief_pdf(tmp_path / "a.pdf", blocks, "kk"), write_brief_pdf(tmp_path / "b.pdf", blocks, "kk")
    assert a.read_bytes() == b.read_bytes()  # no clock in the file
    got = re.sub(r"\s+", " ", "".join(p.extract_text() for p in pypdf.PdfReader(a).pages))
    assert "Қазақстан – Қырғызстан" in got and "Маусым 2021" in got
    long = "在 11 只佩戴项圈的动物中，有 2 只在中国和哈萨克斯坦之间越境：2021年6月至2023年2月共12 次越境。" * 2
    zh = write_brief_pdf(tmp_path / "zh.pdf", [("h1", "边界简报"), ("p", long), ("p", "2021 年：1 只动物")], "zh")
    if cjk_font() is None:
        assert zh is None  # no PDF of empty boxes
    else:
        text = pypdf.PdfReader(zh).pages[0].extract_text()
        # lines break between characters (no text beyond the margin), a paragraph starting with
        # digits keeps them (fpdf2 lost the font of such a paragraph after a fallback-font one)
        assert text.replace("\n", "").count("次越境") == 2 and "2021 年" in text
        assert max(len(line) for line in text.splitlines()) < 80  # the 113-character paragraph wrapped


@pytest.mark.browser
@pytest.mark.parametrize("name", list(TITLES))
def test_every_page_in_every_language_in_chromium(sample_run: Path, tmp_path: Path, name: str) -> None:
    """Each page opened with ``#lang=xx``: Chromium (no network) shows it in that language, with no
    script error; maps also report their layers in that language. Screenshots: tests/report/."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    REPORT.mkdir(parents=True, exist_ok=True)
    page = sample_run / name
    for code in LANGS:
        t = lang(code)
        shot = REPORT / f"{Path(name).stem}_{code}.png"
        # one browser run gives both the DOM after the scripts ran and the screenshot
        run = _chromium(page, tmp_path / f"p_{code}", f"#lang={code}", "--dump-dom", f"--screenshot={shot}")
        assert run.returncode == 0, run.stderr[-2000:]
        dom = run.stdout
        assert f'<html lang="{code}"' in dom, (name, code)
        assert t.gettext(TITLES[name]).replace("&", "&amp;") in dom, (name, code)
        assert _script_errors(run.stderr) == [], (name, code)
        if name in ("map.html", "public.html"):
            status = _status(dom)
            assert status["errors"] == []
            assert t.gettext("Countries (offline)") in status["layers"], (code, status["layers"])
        assert shot.stat().st_size > 10_000, (name, code)


def test_no_message_hides_in_an_f_string() -> None:
    """pybabel (Python < 3.12) does not look inside f-strings: a message marked there would never
    reach the catalogues and stay English in every language."""
    bad = []
    for path in sorted((ROOT / "telemetry").rglob("*.py")):
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for m in re.finditer(r"""\bf(["'])(.*?)\1""", line):
                if re.search(r"""(N_|gettext|ngettext|\b_)\(\s*["']""", m.group(2)):
                    bad.append(f"{path.relative_to(ROOT)}:{k}")
    assert bad == []
