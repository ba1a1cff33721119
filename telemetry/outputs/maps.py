"""Interactive corridor map: one self-contained, offline HTML file (Leaflet via folium).

:func:`render_map` draws processed tracks and the corridor products on a Leaflet map and
writes a single HTML file that works without any network: Leaflet's JavaScript and CSS
(from the ``xstatic-leaflet`` package, images as data URIs), the small map runtime below
and all data are inlined. Nothing is fetched from a CDN. Terrain and satellite tile layers
are offered for when the machine is online; the default base layer is the bundled country
polygons, so an offline map requests no tiles at all (a tile layer picked offline only
shows grey squares and logs failed network requests, no script errors).

Layers (each toggleable in the layer control, explained in the legend):

========================  ====================================================  =========
layer                     what                                                   default
========================  ====================================================  =========
Track <animal>            smoothed track per animal, per segment, simplified     on
                          in metres (``simplify_m``, raised to fit ``budget``)
Fixes (all)               every usable fix, built only when switched on          off
Flagged fixes             rows flagged by cleaning that have coordinates         off
Clusters                  revisited places (:func:`~telemetry.trajectory.         off
                          segment.cluster_table`)
Crossings                 border crossings: animal, from → to, time bracket,     on
                          confidence
Hotspots                  crossing hotspots on the border                        on
Corridors                 corridor polygons coloured by the number of animals    on
Home ranges               KDE / MCP home ranges per animal                        off
Borders                   land borders near the data                             on
Movement (time slider)    animated positions with a 7-day tail                   on
========================  ====================================================  =========

The output is deterministic (folium's random element ids are replaced by a counter while
the map is built and rendered) and written atomically. The map shows exact locations: it
is an internal product, and says so in its title and legend.

Examples
--------
>>> import telemetry                                                   # doctest: +SKIP
>>> from telemetry.outputs.maps import render_map                              # doctest: +SKIP
>>> tracks = telemetry.process("sample_tracks")                        # doctest: +SKIP
>>> render_map(tracks, out="maps/corridors.html")                      # doctest: +SKIP
PosixPath('maps/corridors.html')
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import branca.element
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.map import Layer

from telemetry.arrays import group_time_order, usable_mask
from telemetry.errors import TelemetryError
from telemetry.io.atomic import atomic_write
from telemetry.outputs.i18n import N_, Lang, Page, translated
from telemetry.outputs.layers import corridor_animals
from telemetry.outputs.map_budget import (
    LocalPlane,
    MapBudget,
    fit_areas,
    fit_simplify,
    select_budget,
    simplify_deg,
    thin_fixes,
)
from telemetry.outputs.provenance import generalisation_text, provenance_text
from telemetry.schema import endpoint_columns

__all__ = ["render_map", "render_public_map", "study_extent", "PUBLIC_NOTE", "MapBudget", "leaflet_assets", "SENSITIVE_NOTE",
           "ANIMAL_COLOURS", "LAYER_NAMES"]


SENSITIVE_NOTE = N_("internal: exact locations of a sensitive species")
"""Shown in the title bar and the legend of every map."""


# Qualitative palette (Tableau 10 + 2) readable on both the pale offline base and imagery.
ANIMAL_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                  "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39")


# Sequential ramp (ColorBrewer YlOrRd) for "number of animals" of corridor polygons: index n-1.
_CORRIDOR_RAMP = ("#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")


LAYER_NAMES = {
    "fixes": N_("Fixes (all)"),
    "flagged": N_("Flagged fixes"),
    "clusters": N_("Clusters"),
    "crossings": N_("Crossings"),
    "hotspots": N_("Hotspots"),
    "corridors": N_("Corridors"),
    "home_ranges": N_("Home ranges"),
    "akde": N_("Home ranges, autocorrelated (AKDE with 95 % CI)"),
    "borders": N_("Borders"),
    "movement": N_("Movement (time slider)"),
    "base": N_("Countries (offline)"),
    "terrain": N_("Terrain (OpenTopoMap, online)"),
    "satellite": N_("Satellite (Esri, online)"),
}
"""Names in the layer control, in English (tracks are ``"Track <animal_id>"``); a page shows
them in its language and switches them with the page."""

# Popup row labels: the data keep the English label, the page's script shows it in the
# language chosen when the popup opens (a popup is built only then).
_POPUP_LABELS = (N_("Corridor"), N_("Method"), N_("Animals"), N_("Which"), N_("Countries"), N_("Cross-border"),
                 N_("Hotspots"), N_("Months"), N_("Area (km²)"), N_("Animal"), N_("Level (%)"), N_("Fixes"),
                 N_("From"), N_("To"), N_("Time (UTC)"), N_("Flag"), N_("Source"), N_("Cluster"),
                 N_("First (UTC)"), N_("Last (UTC)"), N_("Hours"), N_("Hotspot"), N_("Crossings"), N_("A → B"),
                 N_("B → A"), N_("Confidence"), N_("Kind"), N_("From → to"), N_("Between (UTC)"),
                 N_("Estimate (UTC)"), N_("Directions"), N_("Period"), N_("Contour"))


_TILES = {
    "terrain": ("https://{s}.tile.opentopomap.org/{z}/{x}/{y}.png",
                "Map data &copy; OpenStreetMap contributors, SRTM | style &copy; OpenTopoMap (CC-BY-SA)", 17),
    "satellite": ("https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
                  "Tiles &copy; Esri, Maxar, Earthstar Geographics", 18),
}


_DEG_DIGITS = 5          # 1e-5 degree ≈ 1 m: the collar's own error is larger


_TAIL_DAYS = 7.0         # length of the trail drawn behind each animal by the time slider


_MAX_INTERP_H = 48.0     # the animation does not interpolate across longer gaps (shows last fix)


_CONTEXT_DEG = 4.0       # countries/borders are drawn this far around the data (degrees)


# pale fills that tell neighbouring countries apart on the offline base
_COUNTRY_FILLS = ("#f4f1e8", "#e9efe1", "#f3e8e4", "#e6ebf2", "#efe9f3")


@lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str, str]:
    """Leaflet's JavaScript, its CSS (images inlined as data URIs) and the version.

    Leaflet comes from the installed ``xstatic-leaflet`` package, so no copy of it lives in
    this repository and nothing is fetched at run time.
    """
    try:
        from xstatic.pkg import leaflet as xleaflet
    except ImportError:  # pragma: no cover - dependency missing
        raise TelemetryError("the map needs the 'xstatic-leaflet' package (pip install xstatic-leaflet)") from None
    base = Path(xleaflet.BASE_DIR)
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    # a source-map comment makes DevTools request a file that does not exist beside the HTML
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)
    css = (base / "leaflet.css").read_text(encoding="utf-8")

    def _inline(m: re.Match[str]) -> str:
        data = base64.b64encode((base / m.group(1)).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", _inline, css)
    return js, css, str(xleaflet.VERSION)


class _Raw(branca.element.Element):
    """Verbatim text in the page (not parsed as a Jinja template: Leaflet's source may hold ``{{``)."""

    _template = branca.element.Template("{{ this.text }}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "TelemetryRaw"
        self.text = text


def _js(obj: Any) -> str:
    """JSON for embedding inside ``<script>``: ``<``, ``>`` and ``&`` escaped (no ``</script>``)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _round(values: Any, digits: int = _DEG_DIGITS) -> list[float | None]:
    """Rounded floats; NaN → None (JSON has no NaN)."""
    a = np.round(np.asarray(values, dtype=float), digits)
    return np.where(np.isfinite(a), a, None).tolist()


def _fmt_time(values: Any) -> list[str]:
    """UTC timestamps as ``YYYY-MM-DD HH:MM`` (empty for missing)."""
    t = pd.to_datetime(pd.Series(values), utc=True)
    return t.dt.strftime("%Y-%m-%d %H:%M").fillna("").tolist()


def _text(values: Any) -> list[str]:
    return pd.Series(values).astype("string").fillna("").tolist()


def _geojson(geoms: Any, digits: int = _DEG_DIGITS) -> list[Any]:
    """Geometries as GeoJSON dicts with coordinates rounded to ``digits`` decimals."""
    arr = shapely.transform(np.asarray(geoms, dtype=object), lambda c: np.round(c, digits))
    return [None if g is None or g.is_empty else shapely.geometry.mapping(g) for g in arr]


@contextlib.contextmanager
def _deterministic_ids() -> Iterator[None]:
    """Replace branca's random element ids by a counter while a map is built and rendered.

    Element ids end up in the JavaScript variable names, so random ids would make every
    rendering of the same data a different file.
    """
    counter = itertools.count(1)
    original = branca.element.Element.__dict__["_generate_id"]
    branca.element.Element._generate_id = classmethod(lambda cls: f"{next(counter):06d}")  # type: ignore[method-assign]
    try:
        yield
    finally:
        branca.element.Element._generate_id = original  # type: ignore[method-assign]


def _add_script(element: branca.element.Element, text: str) -> None:
    """Put ``text`` verbatim into the page's script section, under the element's name.

    ``MacroElement.render`` would wrap each rendered script in a new ``Element``, i.e. compile
    it as a Jinja template: megabytes of layer JSON through Jinja's lexer (seconds at 1M
    fixes), and a ``{{`` in an animal id would break the page. A :class:`_Raw` is not parsed.
    """
    element.get_root().script.add_child(_Raw(text), name=element.get_name())


class _DataLayer(Layer):
    """A Leaflet layer built in the browser by ``TelemetryMap.<builder>(spec)``.

    ``lazy`` layers are built the first time they are switched on (fixes, clusters), so a
    hidden layer costs no time when the map opens.
    """

    def __init__(self, name: str, builder: str, spec: Any, *, show: bool = True, overlay: bool = True,
                 lazy: bool = False) -> None:
        super().__init__(name=name, overlay=overlay, control=True, show=show)
        self._name = "TelemetryLayer"
        self.builder = builder
        self.spec = spec if isinstance(spec, str) else _js(spec)
        self.lazy = lazy

    def render(self, **kwargs: Any) -> None:
        """Declare the layer (and add it to the map when shown at start) without Jinja."""
        name = self.get_name()
        text = f"var {name} = TelemetryMap.layer({_js(self.builder)}, {self.spec}, {_js(self.lazy)});\n"
        if self.show:
            text += f"{name}.addTo({self._parent.get_name()});\n"
        _add_script(self, text)


class _Script(branca.element.MacroElement):
    """A piece of map-level JavaScript; ``{map}`` in the code is replaced by the map's name."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "TelemetryScript"
        self.code = code

    def render(self, **kwargs: Any) -> None:
        """Emit the code verbatim (see :func:`_add_script`)."""
        _add_script(self, self.code.replace("{map}", self._parent.get_name()) + "\n")


def _track_table(tracks: pd.DataFrame) -> pd.DataFrame:
    """Usable rows sorted by animal and time.

    Columns: ``animal_id`` (categorical, categories sorted), ``code`` (its category code),
    ``time`` (UTC), ``lon``/``lat`` (raw fix, degrees), ``segment_id``, ``x_lon``/``x_lat``
    (display position, degrees). Built from column arrays: copying the whole processed
    table (~30 columns) or turning times into Python objects cost seconds at 1M fixes.
    """
    lon_all = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat_all = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)
    if "flag" in tracks.columns:
        ok = usable_mask(tracks)
    else:  # plain fixes: every row with time and coordinates
        ok = tracks["time"].notna().to_numpy() & np.isfinite(lon_all) & np.isfinite(lat_all)
    ok &= tracks["animal_id"].notna().to_numpy()
    pos = np.flatnonzero(ok)

    def column(name: str) -> np.ndarray:
        return tracks[name].to_numpy(dtype=float, na_value=np.nan)[pos]

    lon, lat = lon_all[pos], lat_all[pos]
    # the smoothed position is the best estimate; fall back to the raw fix where it is missing
    if "lon_s" in tracks.columns and "lat_s" in tracks.columns:
        x_lon, x_lat = column("lon_s"), column("lat_s")
        miss = ~(np.isfinite(x_lon) & np.isfinite(x_lat))
        x_lon[miss], x_lat[miss] = lon[miss], lat[miss]
    else:
        x_lon, x_lat = lon.copy(), lat.copy()
    good = np.isfinite(x_lon) & np.isfinite(x_lat)
    pos, lon, lat, x_lon, x_lat = pos[good], lon[good], lat[good], x_lon[good], x_lat[good]

    # animal codes in sorted-id order, so sorting by (code, time) sorts by (animal_id, time)
    # factorize first (on a categorical that is its codes), then sort the few unique ids
    codes0, uniq0 = pd.factorize(tracks["animal_id"].iloc[pos])
    uniq_str = pd.Index(uniq0).astype("string")
    rank = np.argsort(np.argsort(uniq_str.to_numpy(dtype=object), kind="stable"), kind="stable")
    raw_codes = rank[codes0]
    uniques = uniq_str.to_numpy(dtype=object)[np.argsort(rank)]
    time_ns = (pd.to_datetime(tracks["time"].iloc[pos], utc=True).dt.tz_localize(None)
               .to_numpy(dtype="datetime64[ns]").view(np.int64))
    # stable: equal times keep their input order; tracks sorted in category order are in runs
    # of each animal, which a merge puts in the order of the sorted names
    order = group_time_order(raw_codes, time_ns)
    order = np.arange(raw_codes.size) if order is None else order
    codes = raw_codes[order].astype(np.int64)
    seg = (column("segment_id")[good][order] if "segment_id" in tracks.columns else np.zeros(len(order)))
    return pd.DataFrame({
        "animal_id": pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype="string")),
        "code": codes,
        "time": pd.to_datetime(time_ns[order], unit="ns", utc=True),
        "lon": lon[order], "lat": lat[order], "segment_id": seg,
        "x_lon": x_lon[order], "x_lat": x_lat[order],
    }, copy=False)  # fresh arrays: no 2-D block copy


def _track_lines(tab: pd.DataFrame, n_animals: int, crs: LocalPlane, simplify_m: float,
                 budget: int) -> tuple[list[Any], dict[str, Any]]:
    """One MultiLineString per animal (a part per segment), simplified in metres to fit ``budget``.

    Every part is simplified with one tolerance for all animals: ``simplify_m``, raised along
    :func:`tolerance_ladder` until all parts together have at most ``budget`` vertices. If
    even the largest tolerance leaves too many (a part keeps at least its two ends), the
    shortest parts are left out. Returns the lines (None for an animal without a part of two
    fixes) and ``{"tolerance_m", "vertices_in", "vertices", "parts_dropped"}``.
    """
    seg = np.nan_to_num(tab["segment_id"].to_numpy(dtype=float), nan=-1.0)
    a = tab["code"].to_numpy()
    # rows are sorted by animal then time: a part starts where animal or segment changes
    start = np.r_[True, (a[1:] != a[:-1]) | (seg[1:] != seg[:-1])] if len(a) else np.zeros(0, bool)
    part = np.cumsum(start) - 1
    counts = np.bincount(part) if len(part) else np.zeros(0, np.int64)
    keep = counts[part] >= 2  # a LineString needs two vertices
    info: dict[str, Any] = {"tolerance_m": float(simplify_m), "vertices_in": int(keep.sum()), "vertices": 0,
                            "parts_dropped": 0}
    out: list[Any] = [None] * n_animals
    if not keep.any():
        return out, info
    xy = crs.fwd(np.column_stack([tab["x_lon"].to_numpy()[keep], tab["x_lat"].to_numpy()[keep]]))
    part_k = np.cumsum(start[keep]) - 1  # parts renumbered 0..k-1 (same order)
    raw = shapely.linestrings(xy, indices=part_k)
    lines, tol = fit_simplify(raw, simplify_m, budget, preserve_topology=False)
    part_animal = a[keep][np.r_[True, part_k[1:] != part_k[:-1]]]
    n_vert = shapely.get_num_coordinates(lines)
    if n_vert.sum() > budget:
        # longest parts first (stable on ties), as many as fit
        order = np.argsort(-shapely.length(raw), kind="stable")
        fits = np.cumsum(n_vert[order]) <= budget
        chosen = np.sort(order[fits])
        info["parts_dropped"] = int(len(lines) - len(chosen))
        lines, part_animal, n_vert = lines[chosen], part_animal[chosen], n_vert[chosen]
    info.update(tolerance_m=tol, vertices=int(n_vert.sum()))
    if len(lines) == 0:
        return out, info
    lines = shapely.transform(lines, crs.inv)
    # (the animals with a part, numbered without gaps: an animal of one fix, or whose parts were
    # all dropped, between two others left a gap that shapely refuses)
    codes, dense = np.unique(part_animal, return_inverse=True)
    multi = shapely.multilinestrings(lines, indices=dense)
    for i, code in enumerate(codes):
        out[int(code)] = multi[i]
    return out, info


def _track_series(tab: pd.DataFrame, animals: Sequence[str], colours: dict[str, str],
                  budget: int) -> tuple[dict[str, Any], int]:
    """Compact per-animal time series for the time slider and the lazy fixes layer.

    Times are minutes since the first fix, positions 1e-5 degree integers, both delta-encoded
    per animal (the file stays small: ~16 characters a fix). Above ``budget`` fixes the
    series is thinned by :func:`thin_fixes`; returns the spec and the thinning bin
    (minutes, 0 when every usable fix is included).
    """
    t0 = tab["time"].min()
    minutes = ((tab["time"] - t0) / pd.Timedelta(minutes=1)).round().astype(np.int64).to_numpy()
    keep, step = thin_fixes(tab["code"].to_numpy(), minutes, budget)
    codes = tab["code"].to_numpy()[keep]
    minutes = minutes[keep]
    scale = 10 ** _DEG_DIGITS
    # the animation does not interpolate across gaps longer than this: with thinned fixes the
    # gaps are at least one bin, so allow two bins lest the heads jump from fix to fix
    max_gap = max(int(_MAX_INTERP_H * 60), 2 * step)
    out: dict[str, Any] = {"t0": int(t0.timestamp()) if pd.notna(t0) else 0, "scale": scale,
                           "tailMin": int(_TAIL_DAYS * 1440), "maxGapMin": max_gap, "animals": []}
    starts = np.r_[True, codes[1:] != codes[:-1]] if len(codes) else np.zeros(0, bool)
    first = np.flatnonzero(starts)

    def ints(col: str) -> np.ndarray:
        return np.round(tab[col].to_numpy()[keep] * scale).astype(np.int64)

    def delta(v: np.ndarray) -> np.ndarray:
        d = np.diff(v, prepend=0)
        d[first] = v[first]  # restart the running sum at each animal
        return d

    x, y = ints("x_lon"), ints("x_lat")
    cols = {"t": delta(minutes), "x": delta(x), "y": delta(y),
            # raw fixes differ from the smoothed track by metres: store the small offset only
            "rx": ints("lon") - x, "ry": ints("lat") - y}
    # one tolist per column (fast), then sliced per animal (cheap: one slice per animal)
    lists = {k: v.tolist() for k, v in cols.items()}
    bounds = np.r_[first, len(codes)].tolist()
    for i, lo in enumerate(bounds[:-1]):
        hi = bounds[i + 1]
        aid = animals[codes[lo]]
        out["animals"].append({"id": aid, "color": colours[aid], **{k: v[lo:hi] for k, v in lists.items()}})
    return out, step


def _countries_near(bbox: tuple[float, float, float, float]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Bundled countries and their shared land borders, clipped to the data's surroundings."""
    from telemetry.corridor.borders import border_lines, load_countries

    box = shapely.box(bbox[0] - _CONTEXT_DEG, bbox[1] - _CONTEXT_DEG, bbox[2] + _CONTEXT_DEG, bbox[3] + _CONTEXT_DEG)
    countries = load_countries()
    near = countries[shapely.intersects(countries.geometry.values, box)].reset_index(drop=True)
    # the bundled border lines of the pairs near the data (deriving them again from the polygons
    # costs seconds for a migrant whose surroundings span continents)
    lines = border_lines()
    iso = set(near["iso_a3"].astype(str))
    lines = lines[lines["iso_a"].isin(iso) & lines["iso_b"].isin(iso)].reset_index(drop=True)
    near = near.assign(geometry=shapely.intersection(near.geometry.values, box))
    lines = lines.assign(geometry=shapely.intersection(lines.geometry.values, box))
    lines = lines[~shapely.is_empty(lines.geometry.values)].reset_index(drop=True)
    return near, lines


def _features(geoms: Any, styles: Sequence[dict[str, Any]] | None = None,
              popups: Sequence[list[list[str]]] | None = None,
              tips: Sequence[str | dict[str, str]] | None = None) -> list[dict]:
    """Feature list for ``TelemetryMap.geo``: geometry, style, popup rows, tooltip."""
    out = []
    for i, g in enumerate(_geojson(geoms)):
        if g is None:
            continue
        f: dict[str, Any] = {"g": g}
        if styles is not None:
            f["s"] = styles[i]
        if popups is not None:
            f["p"] = popups[i]
        if tips is not None:
            f["t"] = tips[i]
        out.append(f)
    return out


def _rows(*columns: tuple[str, Sequence[Any]]) -> list[list[list[str]]]:
    """Popup tables: per feature, ``[[label, value], ...]`` (values already formatted)."""
    labels = [c[0] for c in columns]
    return [[[lab, str(v)] for lab, v in zip(labels, vals) if str(v) != ""]
            for vals in zip(*(c[1] for c in columns))]


def _legend_html(page: Page, animals: Sequence[str], colours: dict[str, str], corridor_max: int, title: str,
                 notes: Sequence[Note] = ()) -> str:
    """Legend: language switch, title, sensitivity note, animal colours, symbols, then ``notes`` on
    display simplification (every text in every language of ``page``)."""
    e = html.escape
    tx = page.text
    g = translated
    rows = "".join(
        f'<div><span class="tm-line" style="background:{colours[a]}"></span>{e(a)}</div>' for a in animals)
    ramp = "".join(
        f'<span class="tm-box" style="background:{_CORRIDOR_RAMP[min(n, len(_CORRIDOR_RAMP)) - 1]}"></span>{n}'
        f'{"+" if n == len(_CORRIDOR_RAMP) and corridor_max > n else ""} '
        for n in range(1, min(max(corridor_max, 1), len(_CORRIDOR_RAMP)) + 1))
    return (
        page.switch()
        + tx(g(title), "div", ' class="tm-title"')
        + tx(g(SENSITIVE_NOTE), "div", ' class="tm-internal"')
        + f'<div class="tm-animals">{rows}</div>'
        + '<div><span class="tm-dot" style="background:#777"></span>' + tx(g(N_("fix (in the animal's colour)")))
        + '</div><div><span class="tm-dot" style="background:#ff00ff"></span>' + tx(g(N_("flagged fix")))
        + '</div><div><span class="tm-dot" style="background:#fff;border:2px solid #555"></span>'
        + tx(g(N_("cluster")))
        + '</div><div><span class="tm-dot tm-big" style="background:#ffd700;border:2px solid #000"></span>'
        + tx(g(N_("crossing")))
        + '</div><div><span class="tm-dot tm-big" style="background:#e31a1c;border:2px solid #fff"></span>'
        + tx(g(N_("hotspot")))
        + "</div><div>" + tx(g(N_("corridor, animals:"))) + f" {ramp}</div>"
        + '<div><span class="tm-box" style="border:2px dashed #555"></span>'
        + tx(g(N_("home range (MCP dashed, KDE solid)")))
        + '</div><div><span class="tm-line" style="background:#333;height:2px"></span>' + tx(g(N_("land border")))
        + "</div>" + "".join(tx(n, "div", ' class="tm-note"') for n in notes)
    )


Note = Callable[[Lang], str]
"""A legend note: its text in a given language."""


def _banner_html(page: Page, title: str, note: str, css: str) -> str:
    """The banner over the map: ``title`` and the audience ``note`` (styled ``css``), in every language."""
    return (page.text(translated(title)) + "<br>" + page.text(translated(note), "span", f' class="{css}"'))


def _lang_script(page: Page, m: folium.Map, names: Sequence[Note], title: str, note: str) -> str:
    """Script giving the page's switch the names of the layers of ``m`` (each a :data:`Note`),
    the popup labels and the window title (``title — note``) in every language."""
    heading = page.every(lambda t: f"{t.gettext(title)} — {t.gettext(note)}")
    present = {getattr(child, "layer_name", None) for child in m._children.values()}
    every = {n(page.t): page.every(n) for n in names if n(page.t) in present}
    # the popup labels the page's layers use (and the fixes layer's, built by the runtime)
    specs = "".join(child.spec for child in m._children.values() if isinstance(child, _DataLayer))
    used = [lab for lab in _POPUP_LABELS if _js(lab) in specs or lab in ("Animal", "Time (UTC)")]
    labels = {lab: page.every(lambda t, lab=lab: t.gettext(lab)) for lab in used}
    return (f"window.TelemetryLangNames = {_js(every)};\nwindow.TelemetryLangLabels = {_js(labels)};\n"
            f"window.TelemetryLangTitle = {_js(heading)};")


def render_map(
    tracks: pd.DataFrame,
    *,
    crossings: pd.DataFrame | None = None,
    hotspots: pd.DataFrame | None = None,
    corridors: pd.DataFrame | None = None,
    home_ranges: pd.DataFrame | None = None,
    clusters: pd.DataFrame | None = None,
    out: str | os.PathLike[str] = "map.html",
    title: str = N_("Collar telemetry: tracks and cross-border corridors"),
    simplify_m: float = 50.0,
    animation: bool = True,
    budget: MapBudget | None = None,
    lang: str = "en",
) -> Path:
    """Render tracks and corridor products as one self-contained offline HTML map.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Processed tracks (:func:`telemetry.process`) or canonical fixes: ``animal_id``,
        ``time``, ``lon``, ``lat`` (degrees), optional ``flag``, ``segment_id``,
        ``cluster_id``, smoothed ``lon_s``/``lat_s``. Usable rows draw the tracks; flagged
        rows with coordinates form the "Flagged fixes" layer.
    crossings : GeoDataFrame, optional
        :func:`telemetry.corridor.crossings.crossings` (``lon``/``lat`` or point geometry).
    hotspots : GeoDataFrame, optional
        :func:`telemetry.corridor.hotspots.hotspots`.
    corridors : GeoDataFrame, optional
        :func:`telemetry.corridor.corridors.corridors`; coloured by ``n_animals`` (footprint
        class) or ``animal_count``.
    home_ranges : GeoDataFrame, optional
        :func:`telemetry.trajectory.homerange.home_ranges`.
    clusters : DataFrame, optional
        :func:`telemetry.trajectory.segment.cluster_table`; derived from ``tracks`` when
        they have ``cluster_id`` and this is None.
    out : path
        The HTML file to write (atomically; folders are created).
    title : str
        Page and map title; the sensitivity note is always appended.
    simplify_m : float
        Track simplification tolerance in metres (local azimuthal equidistant projection);
        raised for display when the tracks exceed ``budget.track_vertices``.
    animation : bool
        Include the time slider and the "Movement" layer.
    budget : MapBudget, optional
        Bounds on vertices, fixes and markers drawn (default :class:`MapBudget()`), so the
        file size does not grow with the number of fixes (1M or 10M fixes: ~10 MB). Within
        the budget every usable fix is in the time slider and the fixes layer; beyond it the
        layers are reduced for display and the legend says by how much.
    lang : str
        Language the page opens in (:data:`telemetry.outputs.i18n.LANGS`); its legend, layer
        names and popups switch between all of them in the page.

    Returns
    -------
    pathlib.Path
        ``out``. The same inputs give the same bytes.
    """
    for col in ("animal_id", "time", "lon", "lat"):
        if col not in tracks.columns:
            raise TelemetryError(f"render_map: tracks have no '{col}' column")
    budget = MapBudget() if budget is None else budget
    tab = _track_table(tracks)
    if tab.empty:
        raise TelemetryError("render_map: no usable fixes to draw")
    animals = [str(a) for a in tab["animal_id"].cat.categories]  # sorted (see _track_table)
    colours = {a: ANIMAL_COLOURS[i % len(ANIMAL_COLOURS)] for i, a in enumerate(animals)}
    crs = LocalPlane.around(tab["x_lon"].to_numpy(), tab["x_lat"].to_numpy())
    bbox = (float(tab["x_lon"].min()), float(tab["x_lat"].min()), float(tab["x_lon"].max()),
            float(tab["x_lat"].max()))
    if clusters is None and "cluster_id" in tracks.columns:
        from telemetry.trajectory.segment import cluster_table

        clusters = cluster_table(tracks)
    page = Page(lang)
    names: list[Note] = [translated(v) for v in LAYER_NAMES.values()]
    with _deterministic_ids():
        fig, m = _open_page(f"{page.t.gettext(title)} — {page.t.gettext(SENSITIVE_NOTE)}", bbox, zoom_start=8)
        borders = _add_countries(m, bbox, crs, page)
        for key in ("terrain", "satellite"):
            url, attribution, max_zoom = _TILES[key]
            m.add_child(folium.TileLayer(url, attr=attribution, name=page.t.gettext(LAYER_NAMES[key]),
                                         max_zoom=max_zoom, overlay=False, show=False))

        # per-animal time series shared by the lazy fixes layer and the time slider
        series, thin_min = _track_series(tab, animals, colours, budget.fixes)
        m.add_child(_Script(f"TelemetryMap.setTracks({_js(series)});"))
        notes: list[Note] = []
        if thin_min:
            shown_fixes = sum(len(a["t"]) for a in series["animals"])
            notes.append(lambda t: t.gettext("Time slider and fixes: one fix per animal per {every} shown ({shown} of "
                                             "{total} fixes).").format(every=_duration(thin_min, t),
                                                                       shown=t.number(shown_fixes),
                                                                       total=t.number(len(tab))))
        probe = _add_layers(m, tracks, tab, animals, colours, crs, simplify_m, crossings, hotspots, corridors,
                            home_ranges, clusters, borders, budget, thin_min, notes, page, names)
        if animation:
            m.add_child(_DataLayer(page.t.gettext(LAYER_NAMES["movement"]), "movement", {}))

        folium.LayerControl(collapsed=False, position="topright").add_to(m)
        corridor_max = _corridor_max(corridors)
        m.add_child(_Script(
            _lang_script(page, m, names, title, SENSITIVE_NOTE) + "\n"
            + f"TelemetryMap.legend({{map}}, {_js(_legend_html(page, animals, colours, corridor_max, title, notes))}, "
            f"{_js(_banner_html(page, title, SENSITIVE_NOTE, 'tm-internal'))});\n"
            + (f"TelemetryMap.slider({{map}}, {_js(page.t.gettext(LAYER_NAMES['movement']))});\n" if animation else "")
            + "TelemetryLang.start();\n"  # the language asked for in the address, before the status
            + f"TelemetryMap.status({{map}}, {probe});"))
        m.fit_bounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]], padding=(20, 20))
        html_text = fig.render().replace("<html>", f'<html lang="{page.default}">', 1)
    return _write_page(html_text, out)


PUBLIC_NOTE = N_("public: generalised, safe to publish")
"""Subtitle of the public map (see :func:`render_public_map`)."""


def render_public_map(layers: dict[str, Any], meta: dict[str, Any], *, out: str | os.PathLike[str] = "public.html",
                      title: str = N_("Cross-border movements: corridors and crossing places"),
                      extent: tuple[float, float, float, float] | None = None, lang: str = "en") -> Path:
    """The public map: one self-contained offline page drawn only from the public layers.

    Parameters
    ----------
    layers : dict
        :func:`telemetry.outputs.layers.public_layers`: ``corridors``, ``hotspots`` and
        ``home_ranges`` as grid-cell polygons, ``crossing_counts`` per border, month and
        direction. Nothing else is read: no fix, track, crossing point or exact time can reach
        the page.
    meta : dict
        :func:`telemetry.outputs.layers.export_metadata` of the public file: its
        ``generalisation`` (grid, times) and ``synthetic`` notes are shown in the legend.
    out : path
        HTML file (written atomically).
    title : str
        Map title.
    extent : (lon0, lat0, lon1, lat1), optional
        Region shown when the layers hold no polygon (e.g. all left out by the disclosure
        control): the study region in whole degrees (:func:`study_extent`); default the world.
    lang : str
        Language the page opens in (:data:`telemetry.outputs.i18n.LANGS`); every text switches
        between all of them in the page.

    Returns
    -------
    pathlib.Path
        ``out``. The same inputs give the same bytes.
    """
    gen = meta.get("generalisation") or {}
    grid_deg = gen.get("grid_deg")
    shapes = [g for name in ("corridors", "hotspots", "home_ranges") if name in layers and len(layers[name])
              for g in layers[name].geometry.values if g is not None and not g.is_empty]
    if shapes:
        b = shapely.total_bounds(np.asarray(shapes, dtype=object))
        bbox = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    else:  # nothing to show: the study region (whole degrees), else the world
        bbox = extent if extent is not None else (-180.0, -60.0, 180.0, 80.0)
    crs = LocalPlane.around(np.array([bbox[0], bbox[2]]), np.array([bbox[1], bbox[3]]))
    page = Page(lang)
    notes: list[Note] = [
        lambda t: generalisation_text(t, gen),
        translated(N_("Not shown: raw fixes, tracks, exact crossing points and times, individual crossing events, "
                    "resting clusters.")),
        *[lambda t, k=k: provenance_text(t, meta)[k] for k in range(2)]]
    if meta.get("synthetic"):
        notes.insert(0, translated(N_("SYNTHETIC DATA: made from simulated animals, not from observations of real "
                                    "animals; for testing and demonstration only.")))

    with _deterministic_ids():
        fig, m = _open_page(f"{page.t.gettext(title)} — {page.t.gettext(PUBLIC_NOTE)}", bbox, zoom_start=6)
        borders = _add_countries(m, bbox, crs, page)
        probe = "null"
        corridor_max = 0
        c = layers.get("corridors")
        if c is not None and len(c):
            n, order, styles = _corridor_styles(c)
            corridor_max = int(n.max())
            popups = _rows(("Corridor", _col(c, "corridor_id")), ("Method", _col(c, "method")),
                           ("Animals", [str(int(v)) for v in n]),
                           ("Countries", _col(c, "countries")), ("Cross-border", _col(c, "cross_border")),
                           ("Months", _col(c, "months")), ("Area (km²)", _col(c, "area_km2")))
            layer = _DataLayer(page.t.gettext(LAYER_NAMES["corridors"]), "geo", {
                "role": "public", "base": {"weight": 1, "fillOpacity": 0.45, "opacity": 0.9},
                "features": _features(c.geometry.values[order], [styles[i] for i in order],
                                      [popups[i] for i in order])})
            m.add_child(layer)
            probe = layer.get_name()
        h = layers.get("home_ranges")
        if h is not None and len(h):
            col = functools.partial(_col, h)
            m.add_child(_DataLayer(page.t.gettext(LAYER_NAMES["home_ranges"]), "geo", {
                "role": "public", "base": {"fill": False, "opacity": 0.9, "color": "#555"},
                "features": _features(h.geometry.values,
                                      [{"dashArray": "5 5" if mt == "mcp" else None} for mt in col("method")],
                                      _rows(("Animal", col("animal_id")), ("Method", [x.upper() for x in col("method")]),
                                            ("Level (%)", col("level_pct")), ("Area (km²)", col("area_km2"))))},
                show=False))
        hs = layers.get("hotspots")
        if hs is not None and len(hs):
            col = functools.partial(_col, hs)
            m.add_child(_DataLayer(page.t.gettext(LAYER_NAMES["hotspots"]), "geo", {
                "role": "public", "base": {"color": "#e31a1c", "fillColor": "#e31a1c", "weight": 2, "fillOpacity": 0.6},
                "features": _features(hs.geometry.values, None,
                                      _rows(("Hotspot", col("name")), ("Crossings", col("n_crossings")),
                                            ("Animals", col("n_animals")),
                                            ("Directions", [f"{a}→{b}: {x}, {b}→{a}: {y}" for a, b, x, y in
                                                            zip(col("zone_a"), col("zone_b"), col("n_a_to_b"),
                                                                col("n_b_to_a"))]),
                                            ("Months", col("months")),
                                            ("Period", [f"{x} – {y}" for x, y in zip(col("first_month"),
                                                                                    col("last_month"))])))}))
        _add_borders(m, borders, crs, page)
        folium.LayerControl(collapsed=False, position="topright").add_to(m)
        legend = _public_legend_html(page, title, corridor_max, layers.get("crossing_counts"), grid_deg, notes)
        m.add_child(_Script(_lang_script(page, m, [translated(v) for v in LAYER_NAMES.values()], title, PUBLIC_NOTE)
                            + "\n"
                            f"TelemetryMap.legend({{map}}, {_js(legend)}, "
                            f"{_js(_banner_html(page, title, PUBLIC_NOTE, 'tm-public'))});\n"
                            "TelemetryLang.start();\n"
                            f"TelemetryMap.status({{map}}, {probe});"))
        if shapes:
            m.fit_bounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]], padding=(20, 20))
        html_text = fig.render().replace("<html>", f'<html lang="{page.default}">', 1)
    return _write_page(html_text, out)


def study_extent(tracks: pd.DataFrame | None) -> tuple[float, float, float, float] | None:
    """The region of the usable fixes widened to whole degrees (lon0, lat0, lon1, lat1), or None:
    what a public map shows when every data layer was left out (a region, not a position).

    >>> study_extent(pd.DataFrame({"lon": [77.12, 78.9], "lat": [42.5, 43.01], "flag": [None, None],
    ...                            "time": pd.to_datetime(["2022-01-01", "2022-01-02"], utc=True)}))
    (77.0, 42.0, 79.0, 44.0)
    """
    if tracks is None or not len(tracks):
        return None
    ok = usable_mask(tracks)
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)[ok]
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)[ok]
    good = np.isfinite(lon) & np.isfinite(lat)
    if not good.any():
        return None
    return (float(np.floor(lon[good].min())), float(np.floor(lat[good].min())),
            float(np.ceil(lon[good].max())), float(np.ceil(lat[good].max())))


def _public_legend_html(page: Page, title: str, corridor_max: int, counts: pd.DataFrame | None,
                        grid_deg: float | None, notes: Sequence[Note]) -> str:
    """Legend of the public map: language switch, title, what was generalised, symbols, crossings
    per border and year, ``notes`` (every text in every language of ``page``)."""
    e = html.escape
    tx = page.text
    g = translated
    ramp = "".join(
        f'<span class="tm-box" style="background:{_CORRIDOR_RAMP[min(n, len(_CORRIDOR_RAMP)) - 1]}"></span>{n}'
        f'{"+" if n == len(_CORRIDOR_RAMP) and corridor_max > n else ""} '
        for n in range(1, min(max(corridor_max, 1), len(_CORRIDOR_RAMP)) + 1))
    table = ""
    if counts is not None and len(counts) and {"border", "month"} <= set(counts.columns):
        c = pd.DataFrame(counts)
        c = c[c["kind"] == "crossing"] if "kind" in c.columns else c
        n = pd.to_numeric(c.get("n_events", pd.Series(1, index=c.index)), errors="coerce").fillna(0)
        by = n.groupby([c["border"].astype(str), c["month"].astype(str).str[:4]]).sum()
        rows = "".join(f"<tr><td>{e(b)}</td><td>{e(y)}</td><td>{tx(lambda t, v=v: t.number(int(v)))}</td></tr>"
                       for (b, y), v in by.items())
        table = (tx(g(N_("Crossings per border and year:")), "div", ' class="tm-note"')
                 + '<table class="tm-counts"><tr><th>' + tx(g(N_("Border"))) + "</th><th>" + tx(g(N_("Year")))
                 + "</th><th>" + tx(g(N_("Crossings"))) + f"</th></tr>{rows}</table>")
    return (
        page.switch()
        + tx(g(title), "div", ' class="tm-title"')
        + tx(lambda t: t.gettext(PUBLIC_NOTE) + ": " + (
            t.gettext("{grid}° grid cells and calendar months").format(grid=t.decimal(grid_deg)) if grid_deg
            else t.gettext("calendar months")), "div", ' class="tm-public"')
        + "<div>" + tx(g(N_("corridor, animals:"))) + f" {ramp}</div>"
        + '<div><span class="tm-box" style="background:#e31a1c"></span>' + tx(g(N_("crossing hotspot (grid cell)")))
        + '</div><div><span class="tm-box" style="border:2px dashed #555"></span>'
        + tx(g(N_("home range (MCP dashed, KDE solid)")))
        + '</div><div><span class="tm-line" style="background:#333;height:2px"></span>' + tx(g(N_("land border")))
        + "</div>" + table + "".join(tx(n, "div", ' class="tm-note"') for n in notes)
    )


def _duration(minutes: int, t: Lang) -> str:
    """``90`` → ``"90 min"``, ``120`` → ``"2 h"``, ``1440`` → ``"day"``, ``2880`` → ``"2 days"`` (legend, in ``t``).

    >>> from telemetry.outputs.i18n import lang
    >>> _duration(120, lang("en")), _duration(2880, lang("en"))
    ('2 h', '2 days')
    """
    if minutes % 1440 == 0:
        days = minutes // 1440
        return t.ngettext("day", "{n} days", days).format(n=t.number(days))
    if minutes % 60 == 0:
        return t.gettext("{n} h").format(n=t.number(minutes // 60))
    return t.gettext("{n} min").format(n=t.number(minutes))


def _open_page(title: str, bbox: tuple[float, float, float, float], *, zoom_start: int) -> tuple[Any, folium.Map]:
    """A page with Leaflet and the runtime inlined (no CDN) and an empty map centred on ``bbox``
    (call inside :func:`_deterministic_ids`)."""
    js, css, _ = leaflet_assets()
    fig = branca.element.Figure(title=title)
    # error capture first: it must see errors raised while Leaflet and the layers load
    fig.header.add_child(_Raw(f"<script>{_ERROR_CAPTURE_JS}</script>\n<style>{css}\n{_RUNTIME_CSS}</style>\n"
                              f"<script>{js}</script>\n<script>{_RUNTIME_JS}</script>\n{Page.head()}"),
                         name="telemetry_inline_assets")
    # fractional zoom: the whole study area fills the window instead of a power-of-two fit
    m = folium.Map(tiles=None, prefer_canvas=True, control_scale=True, zoom_start=zoom_start, zoom_snap=0.25,
                   zoom_delta=0.5, location=[(bbox[1] + bbox[3]) / 2, (bbox[0] + bbox[2]) / 2])
    # no CDN: Leaflet is inlined above and nothing else (bootstrap, jquery, awesome-markers) is used
    m.default_js = []
    m.default_css = []
    fig.add_child(m)
    return fig, m


def _add_countries(m: folium.Map, bbox: tuple[float, float, float, float], crs: LocalPlane,
                   page: Page) -> gpd.GeoDataFrame:
    """The offline base layer (bundled countries around ``bbox``, named in every language of
    ``page`` from CLDR); returns their shared borders."""
    countries, borders = _countries_near(bbox)
    tips = [page.every(lambda t, c=c, n=n: t.country(c, n))
            for c, n in zip(_text(countries["iso_a3"]), _text(countries["name"]), strict=True)]
    # names on the map itself (not only on hover), in the page's language and switched with it; at
    # 0.1° (a grid corner: no label can point at an animal)
    # placed inside the part of each country the page opens on (the data's box), else anywhere in it
    inside = shapely.intersection(countries.geometry.values, shapely.box(*bbox))
    spots = shapely.point_on_surface(np.where(shapely.is_empty(inside), countries.geometry.values, inside))
    labels = [[round(float(shapely.get_y(pt)), 1), round(float(shapely.get_x(pt)), 1),
               page.text(lambda t, c=c, n=n: t.country(c, n))]
              for pt, c, n in zip(spots, _text(countries["iso_a3"]), _text(countries["name"]), strict=True)
              if not pt.is_empty]
    m.add_child(_DataLayer(page.t.gettext(LAYER_NAMES["base"]), "geo", {
        "role": "geography",  # public geography, not data (tests/test_public_map.py reads the roles)
        "base": {"color": "#9a9a9a", "weight": 1, "fillOpacity": 1.0},
        "background": "#dcdcdc",
        # NE 1:10m borders are good to ~500 m: a 300 m tolerance loses nothing real
        "features": _features(simplify_deg(countries.geometry.values, crs, 300.0),
                              [{"fillColor": _COUNTRY_FILLS[i % len(_COUNTRY_FILLS)]} for i in range(len(countries))],
                              tips=tips), "labels": labels}, overlay=False))
    return borders


def _add_borders(m: folium.Map, borders: gpd.GeoDataFrame, crs: LocalPlane, page: Page) -> None:
    """The land borders layer (dashed lines, ``A – B`` tips), if any."""
    if len(borders):
        m.add_child(_DataLayer(page.t.gettext(LAYER_NAMES["borders"]), "geo", {
            "role": "geography",
            "base": {"color": "#333", "weight": 2, "opacity": 0.8, "dashArray": "8 3 2 3", "interactive": True},
            "features": _features(simplify_deg(borders.geometry.values, crs, 100.0),
                                  tips=[f"{a} – {b}" for a, b in zip(_text(borders["iso_a"]),
                                                                     _text(borders["iso_b"]))])}))


def _write_page(page: str, out: str | os.PathLike[str]) -> Path:
    """Write a rendered page atomically (LF line ends); returns its path."""
    path = Path(out)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(page)

    atomic_write(path, write)
    return path


def _col(df: pd.DataFrame, name: str) -> list[str]:
    """A column as display text, or empty text per row when the table has no such column."""
    return _text(df[name]) if name in df.columns else [""] * len(df)


def _corridor_styles(c: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Animals per corridor, the drawing order (more animals on top) and each polygon's style
    (colour by animals, behaviour corridors dashed)."""
    n = _corridor_n(c)
    idx = np.minimum(n.astype(int), len(_CORRIDOR_RAMP)) - 1
    styles = [{"color": _CORRIDOR_RAMP[i], "fillColor": _CORRIDOR_RAMP[i],
               "dashArray": "6 4" if meth == "behaviour" else None} for i, meth in zip(idx, _col(c, "method"))]
    return n, np.argsort(n, kind="stable"), styles


def _corridor_max(corridors: pd.DataFrame | None) -> int:
    if corridors is None or len(corridors) == 0:
        return 1
    return int(np.nanmax(_corridor_n(corridors)))


def _corridor_n(corridors: pd.DataFrame) -> np.ndarray:
    """Animals per corridor polygon for the colour: the footprint class, else the animals using it."""
    return np.maximum(corridor_animals(corridors, distinct=False), 1.0)


def _point_xy(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat of a point table: ``lon``/``lat`` columns, else the geometry's representative point."""
    if "lon" in df.columns and "lat" in df.columns:
        return (df["lon"].to_numpy(dtype=float, na_value=np.nan), df["lat"].to_numpy(dtype=float, na_value=np.nan))
    pts = shapely.point_on_surface(np.asarray(df.geometry.values, dtype=object))
    return shapely.get_x(pts), shapely.get_y(pts)


def _add_layers(m: folium.Map, tracks: pd.DataFrame, tab: pd.DataFrame, animals: list[str],
                colours: dict[str, str], crs: LocalPlane, simplify_m: float, crossings: pd.DataFrame | None,
                hotspots: pd.DataFrame | None, corridors: pd.DataFrame | None,
                home_ranges: pd.DataFrame | None, clusters: pd.DataFrame | None,
                borders: gpd.GeoDataFrame, budget: MapBudget, thin_min: int, notes: list[Note], page: Page,
                names: list[Note]) -> str:
    """Add the overlay layers in drawing order (areas below lines below points).

    Layer names are in ``page``'s language; the names of the layers added per animal are
    appended to ``names`` (for the page's language switch).

    Each layer is kept within ``budget``; what was reduced for display is appended to
    ``notes`` (shown in the legend). Returns the JavaScript name of the crossings layer (else
    the first track), whose popup the browser self-test opens.
    """
    probe = "null"

    def nm(key: str) -> str:
        return page.t.gettext(LAYER_NAMES[key])

    def fitted_areas(geoms: Any, start_m: float, what: str) -> np.ndarray:
        shapes, tol = fit_areas(geoms, crs, start_m, budget.area_vertices)
        if tol > start_m:
            notes.append(lambda t: t.gettext("{what} simplified for display to {tol} m.").format(
                what=t.gettext(what), tol=t.number(tol, 0 if tol >= 10 else 1)))
        return shapes

    def points_note(shown: int, total: int, what: str) -> None:
        if shown < total:
            notes.append(lambda t: t.gettext("{what}: {shown} of {total} shown.").format(
                what=t.gettext(what), shown=t.number(shown), total=t.number(total)))

    if corridors is not None and len(corridors):
        # popups make a corridor ~700 bytes: at most `points` of them, those used by most animals
        c = corridors.iloc[select_budget(len(corridors), budget.points, _corridor_n(corridors))].reset_index(drop=True)
        points_note(len(c), len(corridors), N_("Corridors (most animals)"))
        n, order, styles = _corridor_styles(c)
        col = functools.partial(_col, c)
        area = (np.round(c["area_km2"].to_numpy(dtype=float), 2).astype(str).tolist()
                if "area_km2" in c.columns else [""] * len(c))
        popups = _rows(("Corridor", col("corridor_id")), ("Method", col("method")),
                       ("Animals", [str(int(v)) for v in n]), ("Which", col("animals")),
                       ("Countries", col("countries")), ("Cross-border", col("cross_border")),
                       ("Hotspots", col("hotspots")), ("Months", col("months")), ("Area (km²)", area))
        shapes = fitted_areas(c.geometry.values[order], min(simplify_m, 50.0), LAYER_NAMES["corridors"])
        feats = _features(shapes, [styles[i] for i in order], [popups[i] for i in order])
        m.add_child(_DataLayer(nm("corridors"), "geo", {
            "base": {"weight": 1, "fillOpacity": 0.45, "opacity": 0.9}, "features": feats}))

    akde = None
    if home_ranges is not None and "method" in home_ranges.columns:
        is_akde = home_ranges["method"].astype(str).to_numpy() == "akde"
        akde = home_ranges[is_akde].reset_index(drop=True)
        home_ranges = home_ranges[~is_akde].reset_index(drop=True)
    if home_ranges is not None and len(home_ranges):
        h = home_ranges.iloc[select_budget(len(home_ranges), budget.points)].reset_index(drop=True)
        points_note(len(h), len(home_ranges), LAYER_NAMES["home_ranges"])
        aid = _text(h["animal_id"])
        meth = _text(h["method"]) if "method" in h.columns else ["" for _ in aid]
        lvl = h["level_pct"].to_numpy(dtype=float) if "level_pct" in h.columns else np.full(len(h), np.nan)
        styles = [{"color": colours.get(a, "#555"), "dashArray": "5 5" if mt == "mcp" else None,
                   "weight": 2 if (mt != "mcp" and lv >= 90) else 1}
                  for a, mt, lv in zip(aid, meth, lvl)]
        area = (np.round(h["area_km2"].to_numpy(dtype=float), 1).astype(str).tolist()
                if "area_km2" in h.columns else [""] * len(h))
        popups = _rows(("Animal", aid), ("Method", [s.upper() for s in meth]),
                       ("Level (%)", [f"{v:g}" for v in lvl]), ("Area (km²)", area),
                       ("Fixes", _text(h["n_fixes"]) if "n_fixes" in h.columns else [""] * len(h)))
        m.add_child(_DataLayer(nm("home_ranges"), "geo", {
            "base": {"fill": False, "opacity": 0.9},
            "features": _features(fitted_areas(h.geometry.values, simplify_m, LAYER_NAMES["home_ranges"]), styles, popups)},
            show=False))
    if akde is not None and len(akde):
        # the estimate's isopleths solid, the CI's (same level, areas at the CI bounds) dashed
        aid = _text(akde["animal_id"])
        contour = akde["contour"].astype(str).tolist() if "contour" in akde.columns else ["estimate"] * len(akde)
        lvl = akde["level_pct"].to_numpy(dtype=float)
        styles = [{"color": colours.get(a, "#555"), "dashArray": None if c == "estimate" else "2 4",
                   "weight": (2 if lv >= 90 else 1) if c == "estimate" else 1}
                  for a, c, lv in zip(aid, contour, lvl)]
        period = (["" if pd.isna(v) else str(int(v)) for v in akde["period"]] if "period" in akde.columns
                  else [""] * len(akde))
        popups = _rows(("Animal", aid), ("Period", period), ("Level (%)", [f"{v:g}" for v in lvl]),
                       ("Contour", [{"estimate": "estimate", "low": "95 % CI low", "high": "95 % CI high"}.get(c, c)
                                    for c in contour]),
                       ("Area (km²)", np.round(akde["area_km2"].to_numpy(dtype=float), 1).astype(str).tolist()))
        m.add_child(_DataLayer(nm("akde"), "geo", {
            "base": {"fill": False, "opacity": 0.9},
            "features": _features(fitted_areas(akde.geometry.values, simplify_m, LAYER_NAMES["akde"]), styles, popups)},
            show=False))

    _add_borders(m, borders, crs, page)

    lines, info = _track_lines(tab, len(animals), crs, simplify_m, budget.track_vertices)
    if info["tolerance_m"] > simplify_m or info["parts_dropped"]:
        notes.append(lambda t: t.gettext(
            "Tracks simplified for display: Douglas–Peucker tolerance {tol} m (not {asked} m), {kept} of {total} "
            "vertices.").format(tol=f"{info['tolerance_m']:g}", asked=f"{simplify_m:g}", kept=t.number(info["vertices"]),
                                total=t.number(info["vertices_in"]))
            + (" " + t.gettext("{n} shortest segments not drawn.").format(n=t.number(info["parts_dropped"]))
               if info["parts_dropped"] else ""))
    else:
        notes.append(lambda t: t.gettext("Tracks simplified to {tol} m (Douglas–Peucker).").format(
            tol=f"{info['tolerance_m']:g}"))
    codes = tab["code"].to_numpy()
    n_fix = np.bincount(codes, minlength=len(animals))
    first_row = np.searchsorted(codes, np.arange(len(animals)), side="left")
    last_row = np.searchsorted(codes, np.arange(len(animals)), side="right") - 1
    times = tab["time"].array  # tz-aware DatetimeArray: take() keeps it vectorised (no Timestamp objects)
    firsts = _fmt_time(times.take(first_row))
    lasts = _fmt_time(times.take(last_row))
    for i, (a, g) in enumerate(zip(animals, lines)):
        if g is None:
            continue
        popup = [[["Animal", a], ["Fixes", str(int(n_fix[i]))], ["From", firsts[i] + " UTC"],
                  ["To", lasts[i] + " UTC"]]]
        names.append(lambda t, a=a: t.gettext("Track {animal}").format(animal=a))
        layer = _DataLayer(names[-1](page.t), "geo", {
            "base": {"color": colours[a], "weight": 2, "opacity": 0.85},
            "features": _features([g], popups=popup, tips=[a])})
        m.add_child(layer)
        probe = layer.get_name() if probe == "null" else probe

    # usable fixes: the data is the time slider's (shared), the layer is built on demand
    if thin_min:
        names.append(lambda t: t.gettext("Fixes (1 per {every})").format(every=_duration(thin_min, t)))
    fixes_name = nm("fixes") if not thin_min else names[-1](page.t)
    m.add_child(_DataLayer(fixes_name, "fixes", {}, show=False, lazy=True))

    flag = tracks["flag"] if "flag" in tracks.columns else pd.Series(pd.NA, index=tracks.index)
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)
    flagged = np.flatnonzero(flag.notna().to_numpy() & np.isfinite(lon) & np.isfinite(lat)
                             & ~((lon == 0) & (lat == 0)))
    shown = flagged[select_budget(len(flagged), budget.points)]  # evenly spread over animals and time
    points_note(len(shown), len(flagged), LAYER_NAMES["flagged"])
    f = tracks.iloc[shown]
    src = (_text(f["source"]) if "source" in f.columns else [""] * len(f))
    row = (_text(f["source_row"]) if "source_row" in f.columns else [""] * len(f))
    m.add_child(_DataLayer(nm("flagged"), "points", {
        "lon": _round(lon[shown]), "lat": _round(lat[shown]),
        "style": {"radius": 4, "color": "#ff00ff", "fillColor": "#ff00ff", "fillOpacity": 0.8, "weight": 1},
        "fields": [["Animal", _text(f["animal_id"])], ["Time (UTC)", _fmt_time(f["time"])],
                   ["Flag", _text(flag.iloc[shown])],
                   ["Source", [f"{Path(s).name}:{r}" if s else "" for s, r in zip(src, row)]]]},
        show=False, lazy=True))

    if clusters is not None and len(clusters):
        # the longest stays matter most (revisited dens, kill sites), then the most fixes
        weight = next((clusters[c].to_numpy(dtype=float, na_value=np.nan) for c in ("duration_h", "n_fixes")
                       if c in clusters.columns), None)
        cl = clusters.iloc[select_budget(len(clusters), budget.points, weight)]
        points_note(len(cl), len(clusters), N_("Clusters (longest)"))
        x, y = _point_xy(cl)
        dur = cl["duration_h"].to_numpy(dtype=float) if "duration_h" in cl.columns else np.full(len(cl), np.nan)
        m.add_child(_DataLayer(nm("clusters"), "points", {
            "lon": _round(x), "lat": _round(y),
            "style": {"radius": 4, "color": "#555", "fillColor": "#fff", "fillOpacity": 0.9, "weight": 2},
            "colors": [colours.get(a, "#555") for a in _text(cl["animal_id"])],
            "fields": [["Animal", _text(cl["animal_id"])],
                       ["Cluster", _text(cl["cluster_id"]) if "cluster_id" in cl.columns else []],
                       ["First (UTC)", _fmt_time(cl["first_time"]) if "first_time" in cl else []],
                       ["Last (UTC)", _fmt_time(cl["last_time"]) if "last_time" in cl else []],
                       ["Fixes", _text(cl["n_fixes"]) if "n_fixes" in cl else []],
                       ["Hours", np.round(dur, 1).astype(str).tolist()]]},
            show=False, lazy=True))

    if hotspots is not None and len(hotspots):
        n_all = (hotspots["n_crossings"].to_numpy(dtype=float, na_value=np.nan) if "n_crossings" in hotspots.columns
                 else None)
        hs = hotspots.iloc[select_budget(len(hotspots), budget.points, n_all)].reset_index(drop=True)
        points_note(len(hs), len(hotspots), N_("Hotspots (busiest)"))
        x, y = _point_xy(hs)
        col = lambda name: _text(hs[name]) if name in hs.columns else []  # noqa: E731
        n_cx = hs["n_crossings"].to_numpy(dtype=float) if "n_crossings" in hs.columns else np.ones(len(hs))
        m.add_child(_DataLayer(nm("hotspots"), "points", {
            "lon": _round(x), "lat": _round(y),
            # area ∝ number of crossings
            "radii": np.round(6 + 3 * np.sqrt(np.nan_to_num(n_cx, nan=1.0)), 1).tolist(),
            "style": {"color": "#fff", "fillColor": "#e31a1c", "fillOpacity": 0.85, "weight": 2},
            "fields": [["Hotspot", col("name")], ["Crossings", col("n_crossings")], ["Animals", col("animals")],
                       ["A → B", col("n_a_to_b")], ["B → A", col("n_b_to_a")], ["Months", col("months")],
                       ["First (UTC)", _fmt_time(hs["first"]) if "first" in hs.columns else []],
                       ["Last (UTC)", _fmt_time(hs["last"]) if "last" in hs.columns else []],
                       ["Confidence", np.round(hs["mean_confidence"].to_numpy(dtype=float), 2).astype(str).tolist()
                        if "mean_confidence" in hs.columns else []]]}))

    if crossings is not None and len(crossings):
        conf_all = (crossings["confidence"].to_numpy(dtype=float, na_value=np.nan)
                    if "confidence" in crossings.columns else None)
        cx = crossings.iloc[select_budget(len(crossings), budget.points, conf_all)].reset_index(drop=True)
        points_note(len(cx), len(crossings), N_("Crossings (most confident)"))
        x, y = _point_xy(cx)
        col = functools.partial(_col, cx)
        conf = (np.round(cx["confidence"].to_numpy(dtype=float), 2).astype(str).tolist()
                if "confidence" in cx.columns else [""] * len(cx))
        before = _fmt_time(cx["t_before"]) if "t_before" in cx.columns else [""] * len(cx)
        after = _fmt_time(cx["t_after"]) if "t_after" in cx.columns else [""] * len(cx)
        layer = _DataLayer(nm("crossings"), "points", {
            "lon": _round(x), "lat": _round(y),
            "style": {"radius": 6, "color": "#000", "fillColor": "#ffd700", "fillOpacity": 0.95, "weight": 2},
            "fields": [["Animal", col("animal_id")], ["Kind", col("kind")],
                       ["From → to", [f"{a} → {b}" for a, b in zip(*map(col, endpoint_columns(cx)))]],
                       ["Between (UTC)", [f"{b} – {a}" for b, a in zip(before, after)]],
                       ["Estimate (UTC)", _fmt_time(cx["time"]) if "time" in cx.columns else [""] * len(cx)],
                       ["Confidence", conf]]})
        m.add_child(layer)
        probe = layer.get_name()
    return probe


_ERROR_CAPTURE_JS = r"""
window.__telemetryErrors = [];
window.addEventListener('error', function (e) {
  // only script errors: a tile or image that fails offline is not a map error
  if (e instanceof ErrorEvent) { window.__telemetryErrors.push(String(e.message)); }
});
window.addEventListener('unhandledrejection', function (e) { window.__telemetryErrors.push(String(e.reason)); });
(function () {
  var orig = console.error;
  console.error = function () {
    window.__telemetryErrors.push(Array.prototype.join.call(arguments, ' '));
    return orig.apply(console, arguments);
  };
})();
"""


_RUNTIME_CSS = r"""
.tm-legend, .tm-slider, .tm-banner { background: rgba(255,255,255,0.93); border-radius: 5px;
  box-shadow: 0 1px 5px rgba(0,0,0,0.4); font: 12px/1.35 "Helvetica Neue", Arial, sans-serif; color: #222; }
.tm-legend { padding: 6px 9px; max-height: 45vh; overflow-y: auto; }
.leaflet-control-layers { font-size: 12px; }
.leaflet-control-layers-list label { margin: 0; }
.tm-legend .tm-title { font-weight: bold; margin-bottom: 2px; }
.tm-legend .tm-note { color: #555; font-style: italic; max-width: 300px; }
.leaflet-tooltip.tm-label { background: transparent; border: none; box-shadow: none; color: #666;
  font: 600 12px sans-serif; text-shadow: 0 0 3px #fff, 0 0 3px #fff; }
.leaflet-tooltip.tm-label:before { display: none; }
.tm-internal, .tm-banner .tm-internal { color: #b00020; font-weight: bold; }
.tm-public { color: #1b5e20; font-weight: bold; }
.tm-counts { border-collapse: collapse; margin: 2px 0 4px; }
.tm-counts td, .tm-counts th { padding: 0 6px; text-align: right; }
.tm-animals { columns: 2; column-gap: 12px; margin: 4px 0; }
.tm-line { display: inline-block; width: 18px; height: 4px; margin: 0 5px 2px 0; vertical-align: middle; }
.tm-dot { display: inline-block; width: 7px; height: 7px; border-radius: 50%; margin: 0 6px 1px 2px;
  vertical-align: middle; box-sizing: border-box; }
.tm-dot.tm-big { width: 11px; height: 11px; margin-left: 0; }
.tm-box { display: inline-block; width: 14px; height: 10px; margin: 0 3px 1px 2px; vertical-align: middle;
  box-sizing: border-box; }
.tm-banner { position: absolute; top: 10px; left: 50%; transform: translateX(-50%); z-index: 800;
  padding: 4px 12px; text-align: center; pointer-events: none; font-size: 13px; max-width: 60%; }
.tm-slider { padding: 5px 8px; display: flex; align-items: center; gap: 6px; }
.tm-slider input[type=range] { width: 320px; }
.tm-slider button { width: 28px; height: 24px; cursor: pointer; font-size: 13px; }
.tm-slider .tm-date { min-width: 120px; font-variant-numeric: tabular-nums; }
table.tm-popup th { text-align: left; padding-right: 8px; font-weight: 600; vertical-align: top; }
"""


_RUNTIME_JS = r"""
window.TelemetryMap = (function () {
  'use strict';
  var ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  // a popup label in the page's current language (window.TelemetryLangLabels: English → {lang: text})
  function label(s) {
    var L = window.TelemetryLangLabels || {}, c = window.TelemetryLang ? window.TelemetryLang.current() : 'en';
    return (L[s] && L[s][c]) || s;
  }
  function table(rows) {
    var h = '<table class="tm-popup">';
    for (var i = 0; i < rows.length; i++) {
      h += '<tr><th>' + esc(label(rows[i][0])) + '</th><td>' + esc(rows[i][1]) + '</td></tr>';
    }
    return h + '</table>';
  }
  function merge(a, b) { var o = {}, k; for (k in a || {}) o[k] = a[k]; for (k in b || {}) o[k] = b[k]; return o; }
  function isoMinute(t0, minutes) {
    return new Date((t0 + minutes * 60) * 1000).toISOString().slice(0, 16).replace('T', ' ');
  }
  // first index i with a[i] > v (a sorted)
  function upper(a, v) { var lo = 0, hi = a.length; while (lo < hi) { var m = (lo + hi) >> 1; if (a[m] <= v) lo = m + 1; else hi = m; } return lo; }

  var movement = null;  // decoded time series, shared by the fixes layer and the time slider

  function decode(spec) {
    return spec.animals.map(function (a) {
      var n = a.t.length, t = new Float64Array(n), x = new Float64Array(n), y = new Float64Array(n);
      var ct = 0, cx = 0, cy = 0;
      for (var i = 0; i < n; i++) {
        ct += a.t[i]; cx += a.x[i]; cy += a.y[i];
        t[i] = ct; x[i] = cx / spec.scale; y[i] = cy / spec.scale;
      }
      return {id: a.id, color: a.color, t: t, x: x, y: y, rx: a.rx, ry: a.ry};
    });
  }

  function setTracks(spec) {
    var data = decode(spec), tmax = 0;
    data.forEach(function (a) { if (a.t.length) tmax = Math.max(tmax, a.t[a.t.length - 1]); });
    movement = {data: data, scale: spec.scale, t0: spec.t0, tmax: tmax, tailMin: spec.tailMin,
                maxGapMin: spec.maxGapMin, update: function () {}};
  }

  var builders = {
    geo: function (spec) {
      var group = L.featureGroup();
      spec.features.forEach(function (f) {
        var st = merge(spec.base, f.s);
        var lyr = L.geoJSON(f.g, {style: function () { return st; },
                                  pointToLayer: function (_, ll) { return L.circleMarker(ll, st); }});
        if (f.p) lyr.bindPopup(table(f.p));
        if (f.t && typeof f.t === 'object') {  // {lang: text}: shown in the page's current language
          lyr.bindTooltip((function (t) { return function () {
            var c = window.TelemetryLang ? window.TelemetryLang.current() : 'en';
            return esc(t[c] || t.en); }; })(f.t), {sticky: true});
        } else if (f.t) lyr.bindTooltip(esc(f.t), {sticky: true});
        group.addLayer(lyr);
      });
      // permanent labels [lat, lon, html] (country names; the html is ours, already escaped)
      (spec.labels || []).forEach(function (l) {
        group.addLayer(L.tooltip({permanent: true, direction: 'center', className: 'tm-label', interactive: false})
          .setLatLng([l[0], l[1]]).setContent(l[2]));
      });
      return group;
    },
    points: function (spec) {
      var group = L.featureGroup();
      var fields = spec.fields.filter(function (f) { return f[1] && f[1].length; });
      function popup(k) {
        return function () {
          return table(fields.map(function (f) { return [f[0], f[1][k]]; })
                             .filter(function (r) { return r[1] !== '' && r[1] !== null && r[1] !== undefined; }));
        };
      }
      for (var i = 0; i < spec.lat.length; i++) {
        if (spec.lat[i] === null || spec.lon[i] === null) continue;
        var st = merge(spec.style);
        if (spec.colors) st.color = spec.colors[i];
        if (spec.radii) st.radius = spec.radii[i];
        group.addLayer(L.circleMarker([spec.lat[i], spec.lon[i]], st).bindPopup(popup(i)));
      }
      return group;
    },
    fixes: function () {
      var group = L.featureGroup();
      if (!movement) return group;
      var scale = movement.scale, t0 = movement.t0;
      movement.data.forEach(function (a) {
        var st = {radius: 2.5, weight: 0, fillColor: a.color, fillOpacity: 0.8};
        for (var i = 0; i < a.t.length; i++) {
          var mk = L.circleMarker([a.y[i] + a.ry[i] / scale, a.x[i] + a.rx[i] / scale], st);
          mk.bindPopup((function (k) { return function () {
            return table([['Animal', a.id], ['Time (UTC)', isoMinute(t0, a.t[k])]]); }; })(i));
          group.addLayer(mk);
        }
      });
      return group;
    },
    movement: function () {
      var group = L.featureGroup();
      if (!movement) return group;
      var spec = movement, data = movement.data;
      var items = data.map(function (a) {
        var tail = L.polyline([], {color: a.color, weight: 3, opacity: 0.9, interactive: false});
        var head = L.circleMarker([a.y[0], a.x[0]], {radius: 6, color: '#000', weight: 1.5,
                                                     fillColor: a.color, fillOpacity: 0.95});
        head.bindTooltip(esc(a.id));
        group.addLayer(tail); group.addLayer(head);
        return {a: a, tail: tail, head: head};
      });
      function update(tm) {
        items.forEach(function (it) {
          var a = it.a, n = a.t.length;
          if (!n || tm < a.t[0] || tm > a.t[n - 1]) {
            it.head.setStyle({opacity: 0, fillOpacity: 0}); it.tail.setLatLngs([]); return;
          }
          var i = upper(a.t, tm) - 1, lat = a.y[i], lon = a.x[i];
          if (i < n - 1 && a.t[i + 1] - a.t[i] <= spec.maxGapMin) {
            var f = (tm - a.t[i]) / (a.t[i + 1] - a.t[i]);
            lat += f * (a.y[i + 1] - a.y[i]); lon += f * (a.x[i + 1] - a.x[i]);
          }
          it.head.setLatLng([lat, lon]).setStyle({opacity: 1, fillOpacity: 0.95});
          var pts = [];
          for (var j = upper(a.t, tm - spec.tailMin); j <= i; j++) pts.push([a.y[j], a.x[j]]);
          pts.push([lat, lon]);
          it.tail.setLatLngs(pts);
        });
      }
      movement.update = update;
      update(0);
      return group;
    }
  };

  // A layer built by `builders[name]` on first display (lazy) or at once.
  var DataLayer = L.Layer.extend({
    initialize: function (build, lazy) { this._build = build; this._inner = lazy ? null : build(); },
    onAdd: function (map) { if (!this._inner) this._inner = this._build(); map.addLayer(this._inner); },
    onRemove: function (map) { if (this._inner) map.removeLayer(this._inner); }
  });

  function layer(name, spec, lazy) {
    var wrapper = new DataLayer(function () { return builders[name](spec); }, lazy);
    if (spec.background) {
      wrapper.on('add', function () { this._map.getContainer().style.background = spec.background; });
    }
    return wrapper;
  }

  function legend(map, html, bannerHtml) {
    // a layer shown again (countries' labels) renders its text in the page's first language:
    // put it back in the chosen one (once per burst of additions)
    var again = null;
    map.on('layeradd', function () {
      if (again || !window.TelemetryLang) return;
      again = setTimeout(function () { again = null; window.TelemetryLang.apply(); }, 0);
    });
    var c = L.control({position: 'bottomleft'});
    c.onAdd = function () {
      var d = L.DomUtil.create('div', 'tm-legend');
      d.innerHTML = html;
      L.DomEvent.disableClickPropagation(d); L.DomEvent.disableScrollPropagation(d);
      return d;
    };
    c.addTo(map);
    var banner = L.DomUtil.create('div', 'tm-banner', map.getContainer());
    banner.innerHTML = bannerHtml || document.title.replace(/[&<>"']/g, function (ch) { return ESC[ch]; });
  }

  function slider(map, layerName) {
    if (!movement) return;
    movement.layerName = layerName;
    var mv = movement, step = 60, timer = null;
    var c = L.control({position: 'bottomleft'});
    c.onAdd = function () {
      var d = L.DomUtil.create('div', 'tm-slider');
      d.innerHTML = '<button type="button" title="Play / pause">\u25B6</button>' +
        '<input type="range" min="0" max="' + mv.tmax + '" step="' + step + '" value="0" aria-label="time">' +
        '<span class="tm-date"></span>' +
        '<select title="days per second"><option value="1">1 d/s</option><option value="7" selected>7 d/s</option>' +
        '<option value="30">30 d/s</option></select>';
      L.DomEvent.disableClickPropagation(d); L.DomEvent.disableScrollPropagation(d);
      var button = d.querySelector('button'), range = d.querySelector('input'),
          label = d.querySelector('.tm-date'), speed = d.querySelector('select');
      function show() { var t = +range.value; label.textContent = isoMinute(mv.t0, t) + ' UTC'; mv.update(t); }
      function stop() { if (timer) { clearInterval(timer); timer = null; } button.textContent = '\u25B6'; }
      range.addEventListener('input', show);
      button.addEventListener('click', function () {
        if (timer) { stop(); return; }
        if (+range.value >= mv.tmax) range.value = 0;
        button.textContent = '\u275A\u275A';
        timer = setInterval(function () {
          var next = +range.value + (+speed.value) * 1440 / 10;  // 10 frames a second
          range.value = Math.min(next, mv.tmax); show();
          if (next >= mv.tmax) stop();
        }, 100);
      });
      show();
      return d;
    };
    c.addTo(map);
  }

  // For tests and support: a hidden element listing the layer-control entries and any error.
  // With '#telemetry-selftest' in the URL the page first switches every overlay on (building
  // the lazy layers), moves the time slider to the middle and opens a popup of `probe`;
  // '#telemetry-selftest-tiles' also picks the first online tile layer (offline: failing tiles).
  function status(map, probe) {
    var hash = window.location.hash || '';
    function report(popup) {
      var names = Array.prototype.map.call(
        document.querySelectorAll('.leaflet-control-layers-list label'),
        function (l) { return l.textContent.trim(); });
      var d = document.createElement('div');
      d.id = 'telemetry-map-status'; d.hidden = true;
      d.setAttribute('data-layers', JSON.stringify(names));
      d.setAttribute('data-errors', JSON.stringify(window.__telemetryErrors || []));
      d.setAttribute('data-zoom', String(map.getZoom()));
      d.setAttribute('data-popup', popup || '');
      document.body.appendChild(d);
    }
    if (hash.indexOf('telemetry-selftest') < 0) { setTimeout(report, 0); return; }
    setTimeout(function () {
      var popup = '';
      try {
        var boxes = document.querySelectorAll('.leaflet-control-layers-overlays input');
        Array.prototype.forEach.call(boxes, function (el) { if (!el.checked) el.click(); });
        var range = document.querySelector('.tm-slider input');
        if (range && movement) {
          range.value = String(Math.round(movement.tmax / 2));
          range.dispatchEvent(new Event('input'));
        }
        if (hash.indexOf('telemetry-selftest-tiles') >= 0) {
          var radios = document.querySelectorAll('.leaflet-control-layers-base input');
          if (radios.length > 1) radios[1].click();
        }
        if (probe && probe._inner && probe._inner.getLayers().length) {
          var first = probe._inner.getLayers()[0];
          first.openPopup();
          popup = first.getPopup().getElement().textContent;
        }
      } catch (e) { window.__telemetryErrors.push('selftest: ' + e.message); }
      setTimeout(function () { report(popup); }, 0);
    }, 0);
  }

  return {setTracks: setTracks, layer: layer, legend: legend, slider: slider, status: status, esc: esc};
})();
"""
