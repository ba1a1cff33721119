"""The languages of the pages: gettext catalogues, country names from CLDR, locale formats.

Every user-facing string of ``public.html``, ``brief.html``, ``index.html`` and ``map.html``
goes through :meth:`Lang.gettext` / :meth:`Lang.ngettext`; the translations live in gettext
catalogues ``telemetry/data/locale/<lang>/LC_MESSAGES/telemetry.po`` (template
``telemetry/data/locale/telemetry.pot``), so a translator corrects them without touching code:
they are read as they are at run time (no compiled ``.mo`` to keep in step). Country names come
from the CLDR data that Babel ships (not typed by hand); numbers, percentages and months are
formatted by the locale's CLDR rules.

A page is written in every language at once (:class:`Page`): the chosen language is in the
HTML, the others ride along in ``data-tr`` attributes, and a small switch at the top of the page
(script inlined, no network) swaps them; ``page.html#lang=ru`` opens it in Russian.

>>> ru = lang("ru")
>>> ru.country("KAZ", "Kazakhstan"), ru.number(12345), ru.percent(0.7)
('Казахстан', '12\\xa0345', '70\\xa0%')
>>> lang("zh").month("2022-03")
'2022年3月'
>>> lang("kk").ngettext("{n} crossing", "{n} crossings", 2).format(n=2) != "2 crossings"
True
"""

from __future__ import annotations

import functools
import gettext
import html
import io
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pandas as pd

from telemetry.config import PAGE_LANGS

__all__ = ["LANGS", "Lang", "Page", "lang", "check_lang", "catalogue_path", "N_", "translated"]

LANGS = PAGE_LANGS
"""Languages of the pages: English, Russian, Kazakh, Kyrgyz, Chinese (simplified)."""

DOMAIN = "telemetry"


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues where it is defined and translate it where it is shown
    (a layer name, a popup label): returns it unchanged.

    >>> N_("Corridors")
    'Corridors'
    """
    return message


def translated(message: str) -> Callable[[Lang], str]:
    """``message`` (English) as a function of the language: for texts built once per language.

    >>> translated("Corridors")(lang("ru"))
    'Коридоры'
    """
    return lambda t: t.gettext(message)


def catalogue_path(code: str) -> Any:
    """The ``.po`` file of language ``code`` (a :mod:`importlib.resources` traversable)."""
    return resources.files("telemetry") / "data" / "locale" / code / "LC_MESSAGES" / f"{DOMAIN}.po"


def check_lang(code: str) -> str:
    """``code`` if it is one of :data:`LANGS`, else a :class:`~telemetry.errors.TelemetryError`.

    >>> check_lang("kk")
    'kk'
    """
    if code not in LANGS:
        from telemetry.errors import TelemetryError

        raise TelemetryError(f"--lang: unknown language {code!r} (one of {', '.join(LANGS)})")
    return code


class Lang:
    """One language: translated strings, CLDR country names, locale-formatted numbers and months."""

    def __init__(self, code: str) -> None:
        from babel import Locale

        self.code = check_lang(code)
        self.locale = Locale.parse(code)
        self._t = _translations(code)

    @property
    def name(self) -> str:
        """The language's own name (CLDR), e.g. ``"русский"``."""
        return self.locale.display_name

    def gettext(self, message: str) -> str:
        """``message`` (English, the catalogue's msgid) in this language."""
        return self._t.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The plural form for ``n`` (the language's CLDR plural rule from its catalogue)."""
        return self._t.ngettext(singular, plural, int(n))

    def country(self, code: str, fallback: str | None = None) -> str:
        """Country name in this language from CLDR; ``code`` is ISO 3166 alpha-3, numeric or
        alpha-2; ``fallback`` (else the code) when CLDR has no such territory (a user's zone)."""
        a2 = _alpha2(str(code))
        if a2 is not None and a2 in self.locale.territories:
            return self.locale.territories[a2]
        return fallback if fallback is not None else str(code)

    def number(self, x: float, digits: int = 0) -> str:
        """``x`` with the locale's grouping and decimal signs, ``digits`` decimals."""
        from babel.numbers import format_decimal

        fmt = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(x, format=fmt, locale=self.locale)

    def decimal(self, x: float) -> str:
        """``x`` as the locale writes it, with as many decimals as it has (up to 3): ``0,1``."""
        from babel.numbers import format_decimal

        return format_decimal(x, locale=self.locale)

    def percent(self, share: float) -> str:
        """``share`` (0-1) as a whole percentage in the locale's style (``70 %``, ``70%``)."""
        from babel.numbers import format_percent

        return format_percent(share, locale=self.locale)

    def month(self, value: Any) -> str:
        """A calendar month (``"YYYY-MM"`` or a timestamp) as the locale writes it, in the form
        that stands alone (nominative: "июнь 2021", so it fits any sentence), or ``"年月"``.

        >>> lang("en").month("2021-06"), lang("ru").month("2021-06"), lang("kk").month("2021-06")
        ('June 2021', 'июнь 2021', 'Маусым 2021')
        """
        from babel.dates import format_date, format_skeleton

        t = pd.Timestamp(str(value) + "-01" if isinstance(value, str) and len(value) == 7 else value)
        d = t.to_pydatetime().replace(tzinfo=None)
        if self.code == "zh":
            return format_skeleton("yMMM", d, locale=self.locale)
        return format_date(d, "LLLL y", locale=self.locale)


@functools.cache
def lang(code: str) -> Lang:
    """The :class:`Lang` of ``code`` (one of :data:`LANGS`; cached)."""
    return Lang(code)


@functools.cache
def _translations(code: str) -> gettext.NullTranslations:
    """The catalogue of ``code`` read from its ``.po`` file (English: the msgids themselves)."""
    if code == "en":
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with catalogue_path(code).open("rb") as f:
        catalog = read_po(f, locale=code, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)  # in memory: gettext's own plural and lookup rules
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@functools.cache
def _alpha2_table() -> dict[str, str]:
    from babel.core import get_global

    table = {k: v[0] for k, v in get_global("territory_aliases").items() if len(v) == 1 and len(v[0]) == 2}
    table.setdefault("XKX", "XK")  # Kosovo: CLDR's user-assigned XK has no alpha-3 alias
    return table


_NOT_COUNTRIES = {"ZZ", "QO", "EU", "EZ", "UN", "XA", "XB"}  # CLDR's unknown region, groupings, pseudo-locales


def _alpha2(code: str) -> str | None:
    a2 = code.upper() if len(code) == 2 and code.isalpha() else _alpha2_table().get(code.upper())
    return None if a2 in _NOT_COUNTRIES else a2


_SWITCH_CSS = """
.tm-lang { font: 13px sans-serif; margin: 0 0 0.5em 0; }
.tm-lang a { margin-right: 0.6em; color: #06c; text-decoration: none; cursor: pointer; }
.tm-lang a.tm-on { font-weight: bold; color: #222; }
@media print { .tm-lang { display: none; } }
"""

# Swap every [data-tr] element's content to the chosen language; the choice is kept in the
# address (#lang=ru) so a link or a screenshot can ask for one. Pages that add translated
# content from their own scripts (the map's legend and layer control) call
# `window.TelemetryLang.start()` once it is there.
_SWITCH_JS = r"""
(function () {
  var current = document.documentElement.lang;
  function apply(code) {
    code = code || current;
    var els = document.querySelectorAll('[data-tr]');
    for (var i = 0; i < els.length; i++) {
      var t = JSON.parse(els[i].getAttribute('data-tr'));
      if (t[code] !== undefined) els[i].innerHTML = t[code];
    }
    var names = window.TelemetryLangNames || {};
    var labels = document.querySelectorAll('.leaflet-control-layers label span span, .leaflet-control-layers label span');
    for (var j = 0; j < labels.length; j++) {
      var el = labels[j];
      if (el.children.length) continue;
      var key = el.getAttribute('data-key') || el.textContent.trim();
      if (names[key] && names[key][code] !== undefined) { el.setAttribute('data-key', key); el.textContent = ' ' + names[key][code]; }
    }
    var title = window.TelemetryLangTitle;
    if (title && title[code] !== undefined) document.title = title[code];
    var links = document.querySelectorAll('.tm-lang a');
    for (var k = 0; k < links.length; k++) links[k].className = links[k].getAttribute('data-lang') === code ? 'tm-on' : '';
    document.documentElement.lang = code;
    current = code;
  }
  function fromHash() { var m = /lang=([a-z]{2})/.exec(location.hash); return m ? m[1] : null; }
  function start() { apply(fromHash() || current); }
  window.TelemetryLang = { apply: function () { apply(current); }, start: start,
                           current: function () { return current; } };
  document.addEventListener('click', function (ev) {
    var a = ev.target.closest ? ev.target.closest('.tm-lang a') : null;
    if (!a) return;
    ev.preventDefault();
    history.replaceState(null, '', '#lang=' + a.getAttribute('data-lang'));
    apply(a.getAttribute('data-lang'));
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
  window.addEventListener('hashchange', function () { apply(fromHash() || current); });
})();
"""


class Page:
    """Text of one page in every language of :data:`LANGS`, ``default`` shown first.

    ``page.text(f)`` calls ``f`` with each :class:`Lang` and returns an element showing the
    default's result whose ``data-tr`` attribute holds all of them (escaped: plain text);
    ``page.html(f)`` the same for HTML fragments ``f`` builds (it escapes what it inserts).

    >>> p = Page("en")
    >>> p.text(lambda t: t.country("KGZ"))  # doctest: +ELLIPSIS
    '<span data-tr="{&quot;en&quot;: &quot;Kyrgyzstan&quot;, ... &quot;zh&quot;: &quot;吉尔吉斯斯坦&quot;}">Kyrgyzstan</span>'
    """

    def __init__(self, default: str = "en") -> None:
        self.default = check_lang(default)
        self.langs = [lang(c) for c in LANGS]
        self.t = lang(default)

    def html(self, build: Callable[[Lang], str], tag: str = "span", attrs: str = "") -> str:
        """Element ``tag`` holding ``build(lang)`` for the default, all languages in ``data-tr``."""
        every = self.every(build)
        if len(set(every.values())) == 1:  # nothing to translate (a number, a code)
            return f"<{tag}{attrs}>{every[self.default]}</{tag}>"
        data = html.escape(json.dumps(every, ensure_ascii=False), quote=True)
        return f'<{tag}{attrs} data-tr="{data}">{every[self.default]}</{tag}>'

    def text(self, build: Callable[[Lang], str], tag: str = "span", attrs: str = "") -> str:
        """As :meth:`html` for plain text (escaped)."""
        return self.html(lambda t: html.escape(build(t)), tag, attrs)

    def every(self, build: Callable[[Lang], str]) -> dict[str, str]:
        """``{code: build(lang)}`` for every language (for scripts that switch text themselves)."""
        return {t.code: build(t) for t in self.langs}

    def switch(self) -> str:
        """The language links (hidden in print); place once near the top of the body."""
        on = ' class="tm-on"'
        links = "".join(f'<a href="#lang={t.code}" data-lang="{t.code}"{on if t.code == self.default else ""}>'
                        f'{html.escape(t.name)}</a>' for t in self.langs)
        return f'<nav class="tm-lang">{links}</nav>'

    @staticmethod
    def head() -> str:
        """The CSS and script of the switch, for the page's ``<head>``."""
        return f"<style>{_SWITCH_CSS}</style><script>{_SWITCH_JS}</script>"
