"""``brief.html``: one printable page per border pair, the questions a ministry asks.

For each pair of countries (or zones) the animals crossed between: a static map of that border
made from the public layers only (hotspot and corridor grid cells, PNG), the crossings per
month and direction, which animals crossed and how their time divided between the two sides,
the crossing places ranked, and plain sentences written from those numbers ("4 of the 11
collared animals crossed between Kazakhstan and Kyrgyzstan in 2022; 70 % of the crossings were
at 2 places").

Counts are of crossings certain enough for the public files (``public.min_confidence``). The
brief names animals and their days on each side but no position finer than the public grid and
no time finer than a month. One self-contained HTML file (images inlined, no script), laid out
for A4 in print.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from telemetry.io.atomic import atomic_write
from telemetry.outputs.i18n import Lang, Page, lang
from telemetry.outputs.layers import confident, crossing_events
from telemetry.outputs.provenance import generalisation_text, provenance_text
from telemetry.schema import endpoint_columns

__all__ = ["write_brief", "border_sentences", "write_brief_pdf", "pdf_font_note", "cjk_font"]

_CSS = """
body { font-family: sans-serif; color: #222; max-width: 180mm; margin: 1em auto; }
h1 { font-size: 150%; } h2 { font-size: 125%; margin-top: 1.5em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; font-size: 90%; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 6px; } td.n { text-align: right; } th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; font-size: 85%; } .warn { color: #a00; }
section { page-break-after: always; } section:last-of-type { page-break-after: auto; }
@page { size: A4; margin: 15mm; }
"""

# A brief is a list of blocks, the same sequence in every language (the structure depends on
# the numbers only): ("h1"|"h2"|"h3"|"p"|"note"|"warn", text), ("table", header, rows, numeric
# columns), ("img", png bytes, caption), ("section",) / ("end",). The HTML page carries every
# language of each block; the PDF is drawn from the blocks of one language.
Block = tuple


def write_brief(out: str | os.PathLike[str], crossings: pd.DataFrame | None, public: dict[str, Any],
                meta: dict[str, Any], *, tracks: pd.DataFrame | None = None,
                time_on_sides: pd.DataFrame | None = None, min_confidence: float = 0.5,
                names: dict[str, str] | None = None, lang: str = "en",
                pdf: str | os.PathLike[str] | None = None, range_share: pd.DataFrame | None = None,
                population: dict[str, Any] | None = None) -> list[Path]:
    """Write ``brief.html`` (and ``pdf``): one section per border pair crossed (see the module docstring).

    Parameters
    ----------
    out : path
        The HTML file (written atomically).
    crossings : DataFrame
        :func:`telemetry.corridor.crossings.crossings` (internal: only counted, never placed).
    public : dict
        :func:`telemetry.outputs.layers.public_layers`: the maps are drawn from its
        ``hotspots`` and ``corridors`` cells only.
    meta : dict
        The public metadata (:func:`telemetry.outputs.layers.export_metadata`): provenance
        (study, period, licence, tool version), generalisation and synthetic notes.
    tracks : DataFrame, optional
        The tracks (the number of collared animals).
    time_on_sides : DataFrame, optional
        :func:`telemetry.corridor.crossings.time_in_zones` of the tracks (days per animal and side).
    min_confidence : float
        Crossings below this confidence are not counted.
    names : dict, optional
        Zone code → name for zones that are not countries (country names come from CLDR in
        each language).
    lang : str
        Language the page opens in and of the PDF (:data:`telemetry.outputs.i18n.LANGS`;
        the page switches between all of them).
    pdf : path, optional
        Also write the brief as a PDF (A4) in ``lang`` (:func:`write_brief_pdf`).
    range_share : DataFrame, optional
        :func:`telemetry.corridor.range_share.range_shares` of the countries: a closing section
        with each country's share of every animal's range.
    population : dict, optional
        :func:`telemetry.trajectory.ranges.population_range` (the mean range, in that section).

    Returns
    -------
    list of pathlib.Path
        The files written (``out``, then ``pdf`` when one was written); the same inputs give
        the same bytes.
    """
    page = Page(lang)
    names = names if names is not None else _country_names()
    cx = _certain(crossings, min_confidence)
    n_collared = int(tracks["animal_id"].nunique()) if tracks is not None and len(tracks) else None
    # per border, once for all languages: its crossings, its published hotspots, its map
    sections = []
    col_from, col_to = endpoint_columns(cx) if cx is not None and not cx.empty else ("", "")
    if col_from:
        pair = crossing_events(cx)["border"].to_numpy()  # the border keys of the public counts
        for key in sorted(set(pair)):
            za, zb = key.split("–")
            hs = _hotspots_of(public, za, zb)
            sections.append((key, za, zb, cx[pair == key], hs, _border_png(za, zb, public, hs)))
    every = {t.code: _blocks(t, meta, sections, col_from, col_to, time_on_sides, n_collared, names, min_confidence)
             + _share_blocks(t, range_share, population, names) for t in page.langs}
    text = _html(page, every)
    path = Path(out)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    written = [path]
    if pdf is not None:
        done = write_brief_pdf(pdf, every[lang], lang)
        if done is not None:
            written.append(done)
    return written


def _blocks(t: Lang, meta: dict[str, Any], sections: list[tuple], col_from: str, col_to: str,
            time_on_sides: pd.DataFrame | None, n_collared: int | None, names: dict[str, str],
            min_confidence: float) -> list[Block]:
    """The brief in language ``t`` as blocks (see :data:`Block`)."""
    _ = t.gettext
    gen = meta.get("generalisation") or {}
    out: list[Block] = [("h1", _("Border brief: where and when the collared animals cross"))]
    if meta.get("synthetic"):
        out.append(("warn", _("SYNTHETIC DATA: made from simulated animals, not from observations of real "
                              "animals; for testing and demonstration only.")))
    out += [("note", x) for x in provenance_text(t, meta)]
    out.append(("note", generalisation_text(t, gen, min_confidence)))
    if not sections:
        out.append(("p", _("No animal crossed a border in these data.")))
    for key, za, zb, sub, hs, png in sections:
        out += _section(t, key, za, zb, sub, col_from, col_to, hs, png, time_on_sides, n_collared, names)
    return out


def _share_blocks(t: Lang, shares: pd.DataFrame | None, population: dict[str, Any] | None,
                  names: dict[str, str]) -> list[Block]:
    """Each country's share of every animal's home range (AKDE 95 %), and the mean range."""
    if shares is None or not len(shares):
        return []
    _ = t.gettext
    out: list[Block] = [("section",), ("h2", _("How much of each animal's range lies in each country")),
                        ("p", _("Share of each animal's home range (autocorrelated kernel density estimate, 95 %) in "
                                "each country, with its 95 % confidence interval, which is wider the fewer times the "
                                "animal was seen to cross its range. Periods when an animal was not range-resident "
                                "(migrating or relocating) have no home range."))]
    if population and np.isfinite(population.get("area_km2", np.nan)):
        out.append(("p", t.ngettext(
            "Mean home range of {n} range-resident animal: {area} km² (95 % CI {low}–{high} km²).",
            "Mean home range of {n} range-resident animals: {area} km² (95 % CI {low}–{high} km²).",
            int(population["n_ranges"])).format(
            n=t.number(int(population["n_ranges"])), area=t.number(population["area_km2"]),
            low=t.number(population["low_km2"]), high=t.number(population["high_km2"]))))
    rows = []
    for r in shares.itertuples(index=False):
        zone = str(r.zone)
        place = t.country(zone, names.get(zone, str(r.name))) if zone != "sea" else _("sea")
        ci = (f"{t.percent(r.share_low)} – {t.percent(r.share_high)}"
              if np.isfinite(r.share_low) else "–")
        rows.append([str(r.animal_id), t.number(int(r.period)), place, t.percent(r.share), ci])
    out.append(("table", [_("animal"), _("period"), _("country"), _("share"), _("95 % CI")], rows, {1, 3, 4}))
    out.append(("end",))
    return out


def _html(page: Page, every: dict[str, list[Block]]) -> str:
    """The page: each block once, its text in every language (images once)."""
    first = every[page.default]
    parts = ["<!DOCTYPE html>", f'<html lang="{page.default}">', '<head><meta charset="utf-8">',
             page.text(lambda t: t.gettext("Border brief"), tag="title"), f"<style>{_CSS}</style>", page.head(),
             "</head>", "<body>", page.switch()]
    for i, block in enumerate(first):
        kind = block[0]
        if kind == "section":
            parts.append("<section>")
        elif kind == "end":
            parts.append("</section>")
        elif kind == "img":
            parts.append(f'<img alt="" src="data:image/png;base64,{base64.b64encode(block[1]).decode("ascii")}">')
            parts.append(page.text(lambda t, i=i: every[t.code][i][2], tag="p", attrs=' class="note"'))
        elif kind == "table":
            parts.append(page.html(lambda t, i=i: _table_html(*every[t.code][i][1:]), tag="div"))
        else:
            tag, cls = {"h1": ("h1", ""), "h2": ("h2", ""), "h3": ("h3", ""), "p": ("p", ""),
                        "note": ("p", ' class="note"'), "warn": ("p", ' class="warn"')}[kind]
            parts.append(page.text(lambda t, i=i: every[t.code][i][1], tag=tag, attrs=cls))
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _table_html(header: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{e(v)}</td>' if j in numeric else f"<td>{e(v)}</td>"
                                    for j, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _certain(crossings: pd.DataFrame | None, min_confidence: float) -> pd.DataFrame | None:
    """The crossings (not excursions) with a time, as certain as the public counts need."""
    if crossings is None:
        return None
    cx = crossings[crossings["kind"].astype(str) == "crossing"] if "kind" in crossings.columns else crossings
    cx = confident(cx, min_confidence)[0]
    return cx[cx["time"].notna()].reset_index(drop=True)


def _country_names() -> dict[str, str]:
    from telemetry.corridor.borders import load_countries

    c = load_countries()
    return dict(zip(c["iso_a3"].astype(str), c["name"].astype(str), strict=True))


def _hotspots_of(public: dict[str, Any], za: str, zb: str) -> pd.DataFrame | None:
    hs = public.get("hotspots")
    if hs is not None and len(hs) and {"zone_a", "zone_b"} <= set(hs.columns):
        hs = hs[((hs["zone_a"] == za) & (hs["zone_b"] == zb)) | ((hs["zone_a"] == zb) & (hs["zone_b"] == za))]
        return hs if len(hs) else None
    return None


def border_sentences(za: str, zb: str, crossings: pd.DataFrame, col_from: str, col_to: str,
                     hotspots: pd.DataFrame | None, n_collared: int | None, names: dict[str, str],
                     t: Lang | None = None) -> list[str]:
    """Plain sentences from the numbers of one border pair, in language ``t`` (default English).

    >>> cx = pd.DataFrame({"animal_id": ["a", "a", "b"], "from_iso": ["KAZ", "KGZ", "KAZ"],
    ...                    "to_iso": ["KGZ", "KAZ", "KGZ"],
    ...                    "time": pd.to_datetime(["2022-03-01", "2022-04-01", "2023-01-05"], utc=True)})
    >>> border_sentences("KAZ", "KGZ", cx, "from_iso", "to_iso", None, 11, {})[:2]
    ['2 of the 11 collared animals crossed between Kazakhstan and Kyrgyzstan: 3 crossings from March 2022 to January 2023.', 'In 2022: 1 animal, 2 crossings. In 2023: 1 animal, 1 crossing.']
    """
    t = t if t is not None else lang("en")
    _, n_ = t.gettext, t.ngettext
    na, nb = t.country(za, names.get(za, za)), t.country(zb, names.get(zb, zb))
    n_an = int(crossings["animal_id"].nunique())
    months = crossings["time"].dt.strftime("%Y-%m")
    if n_collared:
        who = n_("{n} of the {total} collared animals crossed between {a} and {b}",
                 "{n} of the {total} collared animals crossed between {a} and {b}", n_an)
    else:
        who = n_("{n} animal crossed between {a} and {b}", "{n} animals crossed between {a} and {b}", n_an)
    who = who.format(n=t.number(n_an), total=t.number(n_collared or 0), a=na, b=nb)
    out = [_("{who}: {crossings} from {first} to {last}.").format(
        who=who, crossings=_count(t, len(crossings)), first=t.month(months.min()), last=t.month(months.max()))]
    years = crossings.groupby(crossings["time"].dt.year)
    out.append(" ".join(_("In {year}: {animals}, {crossings}.").format(
        year=y, animals=n_("{n} animal", "{n} animals", g["animal_id"].nunique()).format(
            n=t.number(g["animal_id"].nunique())), crossings=_count(t, len(g))) for y, g in years))
    to_b = int(((crossings[col_from].astype(str) == za) & (crossings[col_to].astype(str) == zb)).sum())
    out.append(_("{n_ab} went from {a} to {b}, {n_ba} from {b} to {a}.").format(
        n_ab=_count(t, to_b), n_ba=_count(t, len(crossings) - to_b), a=na, b=nb))
    if hotspots is not None and len(hotspots) and "n_crossings" in hotspots.columns:
        # shares of the crossings the hotspots hold (hotspots count every crossing placed on the line)
        n = pd.to_numeric(hotspots["n_crossings"], errors="coerce").fillna(0).sort_values(ascending=False)
        if n.sum() > 0:
            share = t.percent(n.iloc[:2].sum() / n.sum())
            if len(n) >= 2:
                out.append(n_("{share} of the crossings placed on this border were at the two busiest of its "
                              "{n} crossing place (hotspots on the map).",
                              "{share} of the crossings placed on this border were at the two busiest of its "
                              "{n} crossing places (hotspots on the map).", len(n)).format(
                    share=share, n=t.number(len(n))))
            else:
                out.append(_("All crossings placed on this border were at one place (hotspot on the map)."))
    return out


def _count(t: Lang, k: int) -> str:
    return t.ngettext("{n} crossing", "{n} crossings", int(k)).format(n=t.number(k))


def _section(t: Lang, key: str, za: str, zb: str, cx: pd.DataFrame, col_from: str, col_to: str,
             hs: pd.DataFrame | None, png: bytes | None, time_on_sides: pd.DataFrame | None,
             n_collared: int | None, names: dict[str, str]) -> list[Block]:
    _ = t.gettext
    na, nb = t.country(za, names.get(za, za)), t.country(zb, names.get(zb, zb))
    out: list[Block] = [("section",), ("h2", f"{na} – {nb} ({key})")]
    out += [("p", s) for s in border_sentences(za, zb, cx, col_from, col_to, hs, n_collared, names, t)]
    if png:
        out.append(("img", png, _("Map of the {a}–{b} border ({ca}, {cb}; dashed line): crossing places (red "
                                  "cells) and corridors (orange cells), generalised grid.").format(
            a=na, b=nb, ca=f"{za} = {na}", cb=f"{zb} = {nb}")))
    # crossings per month and direction
    month = cx["time"].dt.strftime("%Y-%m")
    direction = np.where(cx[col_from].astype(str) == za, f"{za} → {zb}", f"{zb} → {za}")
    tab = pd.crosstab(month, direction)
    out.append(("h3", _("Crossings per month (UTC)")))
    out.append(("table", [_("month"), *[str(c) for c in tab.columns]],
                [[t.month(m), *[t.number(int(v)) for v in r]] for m, r in zip(tab.index, tab.to_numpy(), strict=True)],
                set(range(1, len(tab.columns) + 1))))
    # animals that crossed, and their time on each side
    who = cx.groupby(cx["animal_id"].astype(str)).size()
    sides = time_on_sides is not None and len(time_on_sides)
    rows = []
    for animal, n in who.items():
        row = [animal, t.number(int(n))]
        if sides:
            tt = time_on_sides[time_on_sides["animal_id"].astype(str) == animal]
            d = {str(z): (float(dd), float(sh)) for z, dd, sh in zip(tt["zone"], tt["days"], tt["share"], strict=True)}
            row += [f"{t.number(d.get(z, (0.0, 0.0))[0])} ({t.percent(d.get(z, (0.0, 0.0))[1])})" for z in (za, zb)]
        rows.append(row)
    header = [_("animal"), _("crossings")]
    if sides:
        header += [_("days in {country} (share)").format(country=na), _("days in {country} (share)").format(country=nb)]
    out.append(("h3", _("Animals that crossed")))
    out.append(("table", header, rows, set(range(1, len(header)))))
    if hs is not None and len(hs):
        h = hs.assign(_n=pd.to_numeric(hs["n_crossings"], errors="coerce").fillna(0))
        h = h.sort_values("_n", ascending=False, kind="stable")
        c = shapely.centroid(h.geometry.to_numpy())
        rows = [[t.number(k), str(r["name"]), t.number(int(r["_n"])), str(r.get("n_animals", "")),
                 str(r.get("months", "")),
                 _("{lat}°N {lon}°E").format(lat=t.number(shapely.get_y(p), 2), lon=t.number(shapely.get_x(p), 2))]
                for k, ((_i, r), p) in enumerate(zip(h.iterrows(), c, strict=True), start=1)]
        out.append(("h3", _("Crossing places (hotspots), busiest first")))
        out.append(("table", [_("rank"), _("hotspot"), _("crossings"), _("animals"), _("months of the year"),
                              _("grid cell centre")], rows, {0, 2, 3}))
    else:
        out.append(("note", _("No crossing place is published for this border (fewer animals than the public "
                              "threshold, or no hotspot).")))
    out.append(("end",))
    return out


def _border_png(za: str, zb: str, public: dict[str, Any], hotspots: pd.DataFrame | None) -> bytes | None:
    """Static map of one border from the public layers (PNG), or None without geometry.

    It holds no words (countries are labelled by their ISO codes, axes in degrees), so one
    image serves every language; the caption under it is translated."""
    from telemetry.corridor.borders import border_lines, load_countries

    countries = load_countries()
    two = countries[countries["iso_a3"].isin([za, zb])]
    if two.empty:
        return None
    lines = border_lines()
    line = lines[((lines["iso_a"] == za) & (lines["iso_b"] == zb)) | ((lines["iso_a"] == zb) & (lines["iso_b"] == za))]
    shapes = [g for g in (hotspots.geometry.to_numpy() if hotspots is not None and len(hotspots) else [])]
    co = public.get("corridors")
    if co is not None and len(co) and "countries" in co.columns:
        both = co["countries"].astype(str).str.contains(za) & co["countries"].astype(str).str.contains(zb)
        co = co[both.to_numpy()]
        shapes += list(co.geometry.to_numpy())
    else:
        co = None
    focus = shapes or list(line.geometry.to_numpy())
    if not focus:
        return None
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(focus, dtype=object))
    pad = max(0.5, 0.15 * max(x1 - x0, y1 - y0))
    # a landscape frame (3:2 on the ground) whatever the border's direction
    k = max(np.cos(np.radians((y0 + y1) / 2)), 0.2)
    w, h = (x1 - x0 + 2 * pad) * k, y1 - y0 + 2 * pad
    if w < 1.5 * h:
        x0, x1 = (x0 + x1) / 2 - 0.75 * h / k + pad, (x0 + x1) / 2 + 0.75 * h / k - pad
    else:
        y0, y1 = (y0 + y1) / 2 - w / 3 + pad, (y0 + y1) / 2 + w / 3 - pad
    import matplotlib as mpl
    from matplotlib.figure import Figure

    with mpl.rc_context({"svg.hashsalt": "telemetry", "font.size": 8}):
        fig = Figure(figsize=(6.3, 4.2), dpi=110)
        ax = fig.add_subplot()
        frame = shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad)
        geoms = countries.geometry.to_numpy()
        near = shapely.intersects(geoms, frame)
        # only the part of each country inside the frame, simplified below a pixel (~0.01° here)
        clipped = shapely.simplify(shapely.intersection(geoms[near], frame), 0.01)
        fills = ["#f4f1e8", "#e9efe1", "#f3e8e4", "#e6ebf2"]
        for k, (g, name) in enumerate(zip(clipped, countries["iso_a3"].to_numpy()[near], strict=True)):
            _fill(ax, g, fills[k % len(fills)], "#999")
            p = g.representative_point()
            if not g.is_empty:
                ax.text(p.x, p.y, str(name), ha="center", fontsize=8, color="#555")
        for g in line.geometry.to_numpy():
            for part in shapely.get_parts(g):
                xy = shapely.get_coordinates(part)
                ax.plot(xy[:, 0], xy[:, 1], color="#333", lw=1.2, ls="--")
        if co is not None:
            for g in co.geometry.to_numpy():
                _fill(ax, g, "#fd8d3c", "#fd8d3c", alpha=0.45)
        if hotspots is not None:
            for g in hotspots.geometry.to_numpy():
                _fill(ax, g, "#e31a1c", "#800", alpha=0.8)
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
        ax.set_aspect(1.0 / max(np.cos(np.radians((y0 + y1) / 2)), 0.2))
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}°E" if v >= 0 else f"{-v:g}°W"))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}°N" if v >= 0 else f"{-v:g}°S"))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def _fill(ax: Any, geom: Any, face: str, edge: str, alpha: float = 1.0) -> None:
    for poly in shapely.get_parts(geom):
        if poly.geom_type != "Polygon":
            continue
        xy = shapely.get_coordinates(poly.exterior)
        ax.fill(xy[:, 0], xy[:, 1], facecolor=face, edgecolor=edge, alpha=alpha, lw=0.6)


def write_brief_pdf(out: str | os.PathLike[str], blocks: list[Block], code: str) -> Path | None:
    """The brief's ``blocks`` (one language, ``code``) as an A4 PDF, with fpdf2 (no browser).

    Text is set in DejaVu Sans (shipped with matplotlib: Latin and Cyrillic, Kazakh and
    Kyrgyz letters included); Chinese needs a CJK font on the machine (Noto Sans CJK,
    WenQuanYi, Droid Sans Fallback, …): without one no PDF is written and None returned,
    rather than a PDF of empty boxes. The same blocks give the same bytes.
    """
    import datetime as dt
    import logging

    from fpdf import FPDF
    from fpdf.fonts import FontFace

    # fontTools reports the bitmap tables of some CJK fonts it leaves out of the subset: not ours to fix
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
    cjk = None
    if code == "zh":
        cjk = cjk_font()
        if cjk is None:
            return None
    pdf = FPDF(format="A4")
    pdf.set_creation_date(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # not the clock: same bytes
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=15)
    regular, bold = _dejavu()
    if cjk is not None:
        # Chinese: the CJK font sets everything (its Latin, digits and symbols too). fpdf2 2.8
        # loses the font of a paragraph that starts in the main font after one that ended in a
        # fallback font ("No font in show": the first digits vanished), so no fallback here.
        pdf.add_font("body", "", cjk)
        pdf.add_font("body", "B", cjk)
    else:
        pdf.add_font("body", "", regular)
        pdf.add_font("body", "B", bold)
    title = next((b[1] for b in blocks if b[0] == "h1"), "")
    pdf.set_title(title)
    pdf.set_lang(code)
    pdf.add_page()
    # Chinese has no spaces between words: lines break between characters
    wrap = "CHAR" if code == "zh" else "WORD"
    sections = 0
    styles = {"h1": (15, "B", (0, 0, 0)), "h2": (13, "B", (0, 0, 0)), "h3": (11, "B", (0, 0, 0)),
              "p": (10, "", (34, 34, 34)), "note": (8.5, "", (85, 85, 85)), "warn": (10, "B", (170, 0, 0))}
    for block in blocks:
        kind = block[0]
        if kind == "section":
            sections += 1
            if sections > 1:
                pdf.add_page()
        elif kind == "end":
            continue
        elif kind == "img":
            pdf.image(io.BytesIO(block[1]), w=pdf.epw)
            pdf.set_font("body", "", 8.5)
            pdf.set_text_color(85, 85, 85)
            pdf.multi_cell(0, 4.5, block[2], align="L", new_x="LMARGIN", new_y="NEXT", wrapmode=wrap)
            pdf.ln(1)
        elif kind == "table":
            header, rows, numeric = block[1], block[2], block[3]
            pdf.set_font("body", "", 8.5)
            pdf.set_text_color(34, 34, 34)
            align = ["RIGHT" if j in numeric else "LEFT" for j in range(len(header))]
            with pdf.table(text_align=align, headings_style=FontFace(emphasis="BOLD", fill_color=(242, 242, 242)),
                           line_height=4.8, first_row_as_headings=True) as table:
                for r in [header, *rows]:
                    row = table.row()
                    for v in r:
                        row.cell(str(v))
            pdf.ln(2)
        else:
            size, style, colour = styles[kind]
            pdf.set_font("body", style, size)
            pdf.set_text_color(*colour)
            if kind in ("h2", "h3"):
                pdf.ln(2)
            pdf.multi_cell(0, size * 0.5, block[1], align="L", new_x="LMARGIN", new_y="NEXT", wrapmode=wrap)
            pdf.ln(1)
    path = Path(out)
    data = bytes(pdf.output())
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def _dejavu() -> tuple[str, str]:
    """DejaVu Sans regular and bold (shipped with matplotlib, so always present)."""
    import matplotlib as mpl

    base = Path(mpl.get_data_path()) / "fonts" / "ttf"
    return str(base / "DejaVuSans.ttf"), str(base / "DejaVuSans-Bold.ttf")


_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
              "Droid Sans Fallback", "AR PL UMing", "AR PL UKai", "Noto Serif CJK SC")


def pdf_font_note(code: str) -> str | None:
    """Why ``brief.pdf`` cannot be written in language ``code`` on this machine, or None."""
    if code == "zh" and cjk_font() is None:
        return ("brief.pdf not written: a Chinese PDF needs a CJK font on this machine (e.g. apt-get install "
                "fonts-wqy-zenhei or fonts-noto-cjk); brief.html is complete")
    return None


def cjk_font() -> str | None:
    """Path of a font on this machine with Chinese glyphs (first of a list of free CJK fonts), or None."""
    from matplotlib import font_manager

    found = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for name in _CJK_FONTS:
        if name in found:
            return found[name]
    for pattern in ("/usr/share/fonts/**/wqy-*.tt[cf]", "/usr/share/fonts/**/NotoSansCJK*.tt[cf]",
                    "/usr/share/fonts/**/DroidSansFallback*.ttf"):
        import glob

        hits = sorted(glob.glob(pattern, recursive=True))
        if hits:
            return hits[0]
    return None
