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
from telemetry.outputs.layers import confident, crossing_events
from telemetry.schema import endpoint_columns

__all__ = ["write_brief", "border_sentences"]

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


def write_brief(out: str | os.PathLike[str], crossings: pd.DataFrame | None, public: dict[str, Any],
                meta: dict[str, Any], *, tracks: pd.DataFrame | None = None,
                time_on_sides: pd.DataFrame | None = None, min_confidence: float = 0.5,
                names: dict[str, str] | None = None) -> Path:
    """Write ``brief.html``: one section per border pair crossed (see the module docstring).

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
        The public metadata (:func:`telemetry.outputs.layers.export_metadata`): generalisation
        and synthetic notes.
    tracks : DataFrame, optional
        The tracks (the number of collared animals).
    time_on_sides : DataFrame, optional
        :func:`telemetry.corridor.crossings.time_in_zones` of the tracks (days per animal and side).
    min_confidence : float
        Crossings below this confidence are not counted.
    names : dict, optional
        Zone code → name (default: the bundled country names).

    Returns
    -------
    pathlib.Path
        ``out``; the same inputs give the same bytes.
    """
    e = html.escape
    names = names if names is not None else _country_names()
    cx = _certain(crossings, min_confidence)
    n_collared = int(tracks["animal_id"].nunique()) if tracks is not None and len(tracks) else None
    gen = meta.get("generalisation") or {}
    parts = ["<!DOCTYPE html>", '<html lang="en">', '<head><meta charset="utf-8">',
             "<title>Border brief</title>", f"<style>{_CSS}</style></head>", "<body>",
             "<h1>Border brief: where and when the collared animals cross</h1>"]
    if meta.get("synthetic"):
        parts.append(f'<p class="warn"><strong>SYNTHETIC DATA</strong>: {e(str(meta["synthetic"]))}</p>')
    parts.append(f'<p class="note">Maps: {e(str(gen.get("positions", "generalised grid cells")))}. '
                 f"Times: {e(str(gen.get('times', 'calendar months')))}. Crossings counted only when their "
                 f"confidence is at least {min_confidence:g}.</p>")
    if cx is None or cx.empty:
        parts.append("<p>No animal crossed a border in these data.</p>")
    else:
        col_from, col_to = endpoint_columns(cx)
        pair = crossing_events(cx)["border"].to_numpy()  # the border keys of the public counts
        for key in sorted(set(pair)):
            sub = cx[pair == key]
            za, zb = key.split("–")
            parts.append(_section(key, za, zb, sub, col_from, col_to, public, time_on_sides, n_collared, names))
    parts += ["</body>", "</html>"]
    text = "\n".join(parts) + "\n"
    path = Path(out)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


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


def border_sentences(za: str, zb: str, crossings: pd.DataFrame, col_from: str, col_to: str,
                     hotspots: pd.DataFrame | None, n_collared: int | None, names: dict[str, str]) -> list[str]:
    """Plain sentences from the numbers of one border pair.

    >>> cx = pd.DataFrame({"animal_id": ["a", "a", "b"], "from_iso": ["KAZ", "KGZ", "KAZ"],
    ...                    "to_iso": ["KGZ", "KAZ", "KGZ"],
    ...                    "time": pd.to_datetime(["2022-03-01", "2022-04-01", "2023-01-05"], utc=True)})
    >>> border_sentences("KAZ", "KGZ", cx, "from_iso", "to_iso", None, 11, {"KAZ": "Kazakhstan", "KGZ": "Kyrgyzstan"})[:2]
    ['2 of the 11 collared animals crossed between Kazakhstan and Kyrgyzstan: 3 crossings from 2022-03 to 2023-01.', 'In 2022: 1 animal, 2 crossings. In 2023: 1 animal, 1 crossing.']
    """
    na, nb = names.get(za, za), names.get(zb, zb)
    n_an = crossings["animal_id"].nunique()
    months = crossings["time"].dt.strftime("%Y-%m")
    of = f" of the {n_collared} collared animals" if n_collared else (" animals" if n_an != 1 else " animal")
    out = [f"{n_an}{of} crossed between {na} and {nb}: {_n(len(crossings), 'crossing')} from {months.min()} "
           f"to {months.max()}."]
    years = crossings.groupby(crossings["time"].dt.year)
    out.append(" ".join(f"In {y}: {_n(g['animal_id'].nunique(), 'animal')}, {_n(len(g), 'crossing')}."
                        for y, g in years))
    to_b = int(((crossings[col_from].astype(str) == za) & (crossings[col_to].astype(str) == zb)).sum())
    out.append(f"{to_b} crossings went from {na} to {nb}, {len(crossings) - to_b} from {nb} to {na}.")
    if hotspots is not None and len(hotspots) and "n_crossings" in hotspots.columns:
        # shares of the crossings the hotspots hold (hotspots count every crossing placed on the line)
        n = pd.to_numeric(hotspots["n_crossings"], errors="coerce").fillna(0).sort_values(ascending=False)
        if n.sum() > 0:
            share = 100.0 * n.iloc[:2].sum() / n.sum()
            where = "two busiest places" if len(n) >= 2 else "busiest place"
            out.append(f"{share:.0f} % of the crossings placed on this border were at the {where} of "
                       f"{_n(len(n), 'crossing place')} (hotspots on the map).")
    return out


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _section(key: str, za: str, zb: str, cx: pd.DataFrame, col_from: str, col_to: str, public: dict[str, Any],
             time_on_sides: pd.DataFrame | None, n_collared: int | None, names: dict[str, str]) -> str:
    e = html.escape
    na, nb = names.get(za, za), names.get(zb, zb)
    hs = public.get("hotspots")
    if hs is not None and len(hs) and {"zone_a", "zone_b"} <= set(hs.columns):
        hs = hs[((hs["zone_a"] == za) & (hs["zone_b"] == zb)) | ((hs["zone_a"] == zb) & (hs["zone_b"] == za))]
    else:
        hs = None
    parts = [f"<section><h2>{e(na)} – {e(nb)} ({e(key)})</h2>"]
    parts += [f"<p>{e(s)}</p>" for s in border_sentences(za, zb, cx, col_from, col_to, hs, n_collared, names)]
    png = _border_png(za, zb, public, hs)
    if png:
        parts.append(f'<img alt="map of the {e(key)} border" src="data:image/png;base64,{png}">')
    # crossings per month and direction
    month = cx["time"].dt.strftime("%Y-%m")
    direction = np.where(cx[col_from].astype(str) == za, f"{za} → {zb}", f"{zb} → {za}")
    tab = pd.crosstab(month, direction)
    head = "".join(f"<th>{e(c)}</th>" for c in tab.columns)
    rows = "".join(f"<tr><td>{e(m)}</td>" + "".join(f'<td class="n">{int(v)}</td>' for v in r) + "</tr>"
                   for m, r in zip(tab.index, tab.to_numpy(), strict=True))
    parts.append(f"<h3>Crossings per month (UTC)</h3><table><tr><th>month</th>{head}</tr>{rows}</table>")
    # animals that crossed, and their time on each side
    who = cx.groupby(cx["animal_id"].astype(str)).size()
    rows = []
    for animal, n in who.items():
        days = ""
        if time_on_sides is not None and len(time_on_sides):
            t = time_on_sides[time_on_sides["animal_id"].astype(str) == animal]
            d = {str(z): (float(dd), float(sh)) for z, dd, sh in zip(t["zone"], t["days"], t["share"], strict=True)}
            days = "".join(f'<td class="n">{d.get(z, (0.0, 0.0))[0]:.0f} ({100 * d.get(z, (0.0, 0.0))[1]:.0f} %)</td>'
                           for z in (za, zb))
        rows.append(f"<tr><td>{e(animal)}</td><td class=\"n\">{int(n)}</td>{days}</tr>")
    side_head = (f"<th>days in {e(na)} (share)</th><th>days in {e(nb)} (share)</th>"
                 if time_on_sides is not None and len(time_on_sides) else "")
    parts.append(f"<h3>Animals that crossed</h3><table><tr><th>animal</th><th>crossings</th>{side_head}</tr>"
                 + "".join(rows) + "</table>")
    if hs is not None and len(hs):
        h = hs.assign(_n=pd.to_numeric(hs["n_crossings"], errors="coerce").fillna(0))
        h = h.sort_values("_n", ascending=False, kind="stable")
        c = shapely.centroid(h.geometry.to_numpy())
        rows = "".join(f"<tr><td>{k}</td><td>{e(str(r['name']))}</td><td class=\"n\">{int(r['_n'])}</td>"
                       f"<td class=\"n\">{e(str(r.get('n_animals', '')))}</td><td>{e(str(r.get('months', '')))}</td>"
                       f"<td>{shapely.get_y(p):.2f}°N {shapely.get_x(p):.2f}°E</td></tr>"
                       for k, ((_, r), p) in enumerate(zip(h.iterrows(), c, strict=True), start=1))
        parts.append("<h3>Crossing places (hotspots), busiest first</h3><table><tr><th>rank</th><th>hotspot</th>"
                     "<th>crossings</th><th>animals</th><th>months of the year</th><th>grid cell centre</th></tr>"
                     + rows + "</table>")
    else:
        parts.append('<p class="note">No crossing place is published for this border (fewer animals than '
                     "the public threshold, or no hotspot).</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _border_png(za: str, zb: str, public: dict[str, Any], hotspots: pd.DataFrame | None) -> str | None:
    """Static map of one border from the public layers (base64 PNG), or None without geometry."""
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
        for k, (g, name) in enumerate(zip(clipped, countries["name"].to_numpy()[near], strict=True)):
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
        ax.set_xlabel("longitude (°E)")
        ax.set_ylabel("latitude (°N)")
        ax.set_title("hotspots (red cells) and corridors (orange cells), generalised grid")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fill(ax: Any, geom: Any, face: str, edge: str, alpha: float = 1.0) -> None:
    for poly in shapely.get_parts(geom):
        if poly.geom_type != "Polygon":
            continue
        xy = shapely.get_coordinates(poly.exterior)
        ax.fill(xy[:, 0], xy[:, 1], facecolor=face, edgecolor=edge, alpha=alpha, lw=0.6)
