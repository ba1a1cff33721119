"""The folder ``telemetry run`` writes: tracks, tables, internal and public layers, charts, the
map and ``index.html`` that lists them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telemetry.config import ChartParams, PublicParams
from telemetry.io.atomic import atomic_write, frozen_heap
from telemetry.outputs.brief import write_brief
from telemetry.outputs.formats import write_feature_collection, write_gpkg_layers
from telemetry.outputs.i18n import N_, Page, translated
from telemetry.outputs.layers import (
    BORDER_NOTE,
    DEFAULT_LICENCE,
    build_internal_layers,
    crossing_counts,
    export_metadata,
    layer_parameters,
    public_layers,
    synthetic_sources,
)
from telemetry.outputs.maps import render_public_map, study_extent


def write_deliverables(out_dir: str | os.PathLike[str], tracks: pd.DataFrame | None = None,
                       crossings: pd.DataFrame | None = None, hotspots: pd.DataFrame | None = None,
                       corridors: pd.DataFrame | None = None, home_ranges: pd.DataFrame | None = None,
                       quality: dict[str, Any] | None = None, params: dict[str, Any] | None = None, *,
                       grid_deg: float = 0.1, generated: str | None = None,
                       licence: str = DEFAULT_LICENCE, fix_points: bool = True,
                       summary: pd.DataFrame | None = None, steps_from_metrics: bool = False,
                       background: Sequence[Callable[[], object]] = (),
                       charts: ChartParams | None = None, public: PublicParams | None = None,
                       public_from: tuple[pd.DataFrame, Sequence[Any]] | None = None,
                       lang: str = "en", tables: dict[str, pd.DataFrame] | None = None,
                       ranges: Any = None) -> list[Path]:
    """Write the products of a run into ``out_dir``; every layer argument is optional.

    Files (skipped when nothing feeds them)::

        public.geojson          generalised corridors, hotspots, crossing counts, home ranges
        public.html             the same public layers as an offline map (nothing else is read)
        brief.html              one printable page per border crossed (counts, animals, places)
        brief.pdf               the same as a PDF in ``lang`` (not for Chinese without a CJK font)
        internal.gpkg           exact layers: tracks (every fix; track_lines instead with
                                ``fix_points=False``), crossings, hotspots, corridors,
                                home_ranges, clusters (NOT for publication)
        crossings_by_month.csv  events per border × month × direction × kind
        charts/*.png            fix success, daily distance, crossings per month
        index.html              links to map.html (if present), charts and files; a table

    Parameters
    ----------
    out_dir : path
        Output folder (created if missing).
    tracks, crossings, hotspots, corridors, home_ranges : DataFrame, optional
        Outputs of :func:`telemetry.process`, :func:`telemetry.crossings`,
        :func:`telemetry.hotspots`, :func:`telemetry.corridors`, :func:`telemetry.home_ranges`.
    quality : dict, optional
        :func:`telemetry.trajectory.quality.summarize` of the fixes (fix success in the index table).
    params : dict, optional
        Parameters to record in the metadata (default ``tracks.attrs["parameters"]``).
    grid_deg : float
        Generalisation grid of the public file (degrees).
    generated, licence
        See :func:`export_metadata`; ``generated`` defaults to a value derived from the data,
        so reruns give byte-identical files.
    fix_points : bool
        Every fix as a point in ``internal.gpkg`` (the slowest file: ~4 s per million fixes);
        False writes one line per animal and segment instead, for when the fixes go to a
        GeoParquet file beside it (``telemetry run`` writes ``tracks.parquet``).
    summary : DataFrame, optional
        :func:`telemetry.trajectory.summary.track_summary` of ``tracks`` when the caller has it
        (the animal table of ``index.html``); computed otherwise.
    steps_from_metrics : bool
        ``tracks`` come unchanged from :func:`telemetry.process`: the track lines add up
        its ``step_m`` (see :func:`track_lines`).
    background : sequence of callables
        Other writers (e.g. :func:`write_tracks` of the fixes) to run on worker threads
        while these files are written; they finish before ``index.html`` is built, so it
        can list the files they write. Their errors are raised here.
    charts : ChartParams, optional
        The charts' parameters (default :class:`telemetry.config.ChartParams`).
    public : PublicParams, optional
        Disclosure control of the public files (``min_animals``, ``min_confidence``; default
        :class:`telemetry.config.PublicParams`); the grid is ``grid_deg``.
    public_from : (tracks, (crossings, hotspots, corridors, home_ranges)), optional
        What the public files are made from when it is not the above (an embargo: the tracks up
        to the embargo date and their products).
    lang : str
        Language the pages open in and of ``brief.pdf`` (every page carries all of
        :data:`telemetry.outputs.i18n.LANGS` and switches in the page).
    ranges : telemetry.trajectory.ranges.Ranges, optional
        Movement-model ranges: the brief's section on each country's share of every range
        (``public_from`` may carry the embargoed ones as a fifth product).
    tables : dict, optional
        Further CSV tables, ``{file name: DataFrame}`` (the movement-model ranges of
        :func:`telemetry.pipeline.range_tables`), written beside the others and listed in
        ``index.html``.

    Returns
    -------
    list of Path
        The files written, in the order above.
    """
    with frozen_heap():
        return _write_deliverables(out_dir, tracks, crossings, hotspots, corridors, home_ranges, quality, params,
                                   grid_deg=grid_deg, generated=generated, licence=licence, fix_points=fix_points,
                                   summary=summary, steps_from_metrics=steps_from_metrics,
                                   background=background, charts=charts, public=public,
                                   public_from=public_from, lang=lang, tables=tables, ranges=ranges)


def _write_deliverables(out_dir: str | os.PathLike[str], tracks: pd.DataFrame | None,
                        crossings: pd.DataFrame | None, hotspots: pd.DataFrame | None,
                        corridors: pd.DataFrame | None, home_ranges: pd.DataFrame | None,
                        quality: dict[str, Any] | None, params: dict[str, Any] | None, *, grid_deg: float,
                        generated: str | None, licence: str, fix_points: bool, summary: pd.DataFrame | None,
                        steps_from_metrics: bool, background: Sequence[Callable[[], object]],
                        charts: ChartParams | None = None, public: PublicParams | None = None,
                       public_from: tuple[pd.DataFrame, Sequence[Any]] | None = None,
                       lang: str = "en", tables: dict[str, pd.DataFrame] | None = None,
                       ranges: Any = None) -> list[Path]:
    """:func:`write_deliverables` (its arguments), inside :func:`frozen_heap`."""
    from telemetry.outputs.charts import write_charts

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if params is None:
        params = dict(tracks.attrs.get("parameters", {})) if tracks is not None else {}
    all_params = layer_parameters(params, crossings=crossings, hotspots=hotspots, corridors=corridors)
    written: list[Path] = []

    internal = build_internal_layers(tracks, crossings, hotspots, corridors, home_ranges, stream_tracks=True,
                                fix_points=fix_points, steps_from_metrics=steps_from_metrics)
    # The GeoPackage and the ``background`` writers run on worker threads while this one
    # builds the GeoJSON and the charts (pure Python, holding the GIL). pyarrow releases the
    # GIL while it encodes Parquet, so that overlaps on two cores; pyogrio 0.13's
    # write_arrow was measured to hold it (the GeoPackage only interleaves). Each file is
    # written by one thread only, from tables nobody modifies, so the bytes do not depend
    # on the timing. (The internal layers are built here, not on a worker: a fallback
    # geodesic in track_lines is a parallel numba loop, which must not run in two threads.)
    with ThreadPoolExecutor(max_workers=1 + len(background)) as pool:
        jobs = [pool.submit(job) for job in background]
        gpkg_job = None
        if internal:
            meta = export_metadata(audience="internal", grid_deg=None, params=all_params, generated=generated,
                                   tracks=tracks, layers=internal, licence=licence)
            gpkg_job = pool.submit(write_gpkg_layers, internal, out / "internal.gpkg", meta)
        pp = public or PublicParams()
        p_tracks, p_products = public_from or (tracks, (crossings, hotspots, corridors, home_ranges, ranges))
        p_cx, p_hs, p_co, p_hr = p_products[:4]
        p_ranges = p_products[4] if len(p_products) > 4 else None
        pub = public_layers(p_cx, p_hs, p_co, p_hr, grid_deg=grid_deg,
                            min_animals=pp.min_animals, min_confidence=pp.min_confidence)
        if pub:
            meta = export_metadata(audience="public", grid_deg=grid_deg, params=all_params, generated=generated,
                                   tracks=p_tracks, layers=pub, licence=licence, study=pp.study)
            if public_from is not None:
                meta["generalisation"]["embargo_months"] = int(pp.embargo_months)
            write_feature_collection(pub, out / "public.geojson", meta)
            written.append(out / "public.geojson")
            # the same layers as a map anyone can open (offline, nothing but the public layers)
            written.append(render_public_map(pub, meta, out=out / "public.html", extent=study_extent(p_tracks),
                                             lang=lang))
            if p_cx is not None:
                # one page per border for the ministries: counts, animals, days on each side
                sides = None
                if p_tracks is not None and len(p_tracks):
                    from telemetry.corridor.crossings import time_in_zones

                    sides = time_in_zones(p_tracks)
                # the country shares of range_share.csv when the brief is made from the same ranges
                known = (tables or {}).get("range_share.csv") if p_ranges is ranges else None
                shares, population = _brief_shares(p_ranges, known)
                written += write_brief(out / "brief.html", p_cx, pub, meta, tracks=p_tracks, time_on_sides=sides,
                                       min_confidence=pp.min_confidence, lang=lang, pdf=out / "brief.pdf",
                                       range_share=shares, population=population)
        later: list[Path] = []
        for name, table in (tables or {}).items():
            atomic_write(out / name, lambda tmp, t=table: t.to_csv(tmp, index=False, float_format="%.6g",
                                                                  date_format="%Y-%m-%dT%H:%M:%SZ"))
            later.append(out / name)
        if crossings is not None:
            table = crossing_counts(crossings)
            atomic_write(out / "crossings_by_month.csv", lambda tmp: table.to_csv(tmp, index=False))
            later.append(out / "crossings_by_month.csv")
        later += write_charts(out / "charts", tracks, crossings, params=charts)
        for job in jobs:
            job.result()  # re-raises the worker's error, if any
        if gpkg_job is not None:
            gpkg_job.result()
            written.append(out / "internal.gpkg")
        written += later
    index = out / "index.html"
    html = index_html(out, written, tracks=tracks, crossings=crossings, quality=quality, grid_deg=grid_deg,
                      generated=export_metadata(audience="public", grid_deg=grid_deg, generated=generated,
                                                tracks=tracks, layers=pub)["generated"], summary=summary,
                      lang=lang)
    atomic_write(index, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))
    written.append(index)
    return written


def _brief_shares(ranges: Any, known: pd.DataFrame | None = None
                  ) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
    """Country shares of the ranges (``known``: already computed, e.g. ``range_share.csv``) and the
    population range, for the brief (None without ranges)."""
    if ranges is None or not len(ranges.table):
        return None, None
    from telemetry.trajectory.ranges import population_range

    if known is not None:
        shares = known[known["zone_kind"] == "country"].reset_index(drop=True)
    else:
        from telemetry.corridor.range_share import range_shares
        from telemetry.corridor.zones import load_zones

        shares = range_shares(ranges, load_zones(None))
    return shares, population_range(ranges.table)


RUN_FILES = ("tracks.parquet", "track_summary.csv", "flag_summary.csv", "quality.json")
"""Files of :func:`telemetry.pipeline.run` that ``index.html`` links when present."""


def _esc(text: Any) -> str:
    import html

    return html.escape("" if text is None else str(text), quote=True)


def index_html(out_dir: Path, files: list[Path], *, tracks: pd.DataFrame | None = None,
               crossings: pd.DataFrame | None = None, quality: dict[str, Any] | None = None,
               grid_deg: float = 0.1, generated: str | None = None, summary: pd.DataFrame | None = None,
               lang: str = "en") -> str:
    """A self-contained ``index.html`` (inline CSS and the language switch, no CDN) for ``out_dir``,
    in every language of the pages, opening in ``lang``.

    Links ``map.html`` when it exists in ``out_dir``, shows the charts among ``files`` and
    lists every file with its size; a per-animal table (fixes, days, fix success,
    distance, crossings) when ``tracks`` is given (``summary``: its
    :func:`telemetry.trajectory.summary.track_summary`, if already computed).
    """
    from telemetry.version import __version__

    page = Page(lang)
    tx, g = page.text, translated
    rel = [p.relative_to(out_dir).as_posix() for p in files if p.parent == out_dir or out_dir in p.parents]
    # the other outputs of `telemetry run`, when they are already there
    rel += [n for n in RUN_FILES if (out_dir / n).exists() and n not in rel]
    charts = [r for r in rel if r.endswith(".png")]
    data = [r for r in rel if not r.endswith(".png") and r != "index.html"]
    team = ("internal.gpkg", "tracks.parquet")  # exact positions
    notes = {"public.geojson": lambda t: t.gettext("safe to publish: generalised to {grid}° cells and months").format(
                 grid=t.decimal(grid_deg)),
             "public.html": lambda t: t.gettext("map safe to publish: only the public layers ({grid}° cells, "
                                                "months)").format(grid=t.decimal(grid_deg)),
             "brief.html": g(N_("one page per border for the ministries: crossings, animals, places (names animals)")),
             "brief.pdf": g(N_("the border brief as a PDF")),
             "internal.gpkg": g(N_("exact positions — for the team only, do not publish")),
             "crossings_by_month.csv": g(N_("border events per border, month and direction")),
             "ranges.csv": g(N_("home ranges per animal and resident period: movement model, autocorrelated "
                                "KDE areas with 95 % CIs beside MCP/KDE, speed and daily distance")),
             "speeds_daily.csv": g(N_("speed and distance per animal and day (where the velocity is resolved)")),
             "range_share.csv": g(N_("each country's share of every animal's range, with 95 % CIs")),
             "zone_sizes.csv": g(N_("protected areas against the median home range")),
             "tracks.parquet": g(N_("exact positions — for the team only")),
             "map.html": g(N_("interactive map"))}
    parts = ["<!DOCTYPE html>", f'<html lang="{page.default}">', "<head>", '<meta charset="utf-8">',
             tx(g(N_("Collar telemetry summary")), "title"),
             "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 8px}"
             "td.n{text-align:right}th{background:#f2f2f2}img{max-width:100%;border:1px solid #eee}"
             ".warn{color:#a00}</style>", page.head(), "</head>", "<body>", page.switch(),
             tx(g(N_("Collar telemetry summary")), "h1"),
             tx(lambda t: t.gettext("telemetry {version}; data through {month}.").format(
                 version=__version__, month=t.month(generated) if generated and len(generated) == 7 else
                 (generated or "–")), "p")]
    synthetic = synthetic_sources(tracks)
    if synthetic:
        parts.append(tx(lambda t: t.gettext("SYNTHETIC DATA: made from simulated animals, not from observations of "
                                            "real animals; for testing and demonstration only.")
                        + " " + t.gettext("Sources: {files}.").format(files=", ".join(synthetic)),
                        "p", ' class="warn"'))
    if (out_dir / "map.html").exists():
        parts.append('<p><a href="map.html">' + tx(g(N_("Open the interactive map")), "strong") + "</a> "
                     + tx(g(N_("(exact positions: for the team only)")), "span", ' class="warn"') + "</p>")
    if (out_dir / "public.html").exists():
        parts.append('<p><a href="public.html">' + tx(g(N_("Open the public map")), "strong") + "</a> "
                     + tx(g(N_("(generalised: safe to publish and to share with ministries)"))) + "</p>")
    if (out_dir / "brief.html").exists():
        parts.append('<p><a href="brief.html">' + tx(g(N_("Border brief")), "strong") + "</a> "
                     + tx(g(N_("(one printable page per border: crossings, animals, crossing places)")))
                     + (' · <a href="brief.pdf">PDF</a>' if (out_dir / "brief.pdf").exists() else "") + "</p>")
    if tracks is not None:
        parts += [tx(g(N_("Animals")), "h2"), _animal_table(page, tracks, crossings, quality, summary)]
    notes_run = ((quality or {}).get("processing") or {}).get("notes") or []
    if notes_run:  # the run's own notes (English, as printed on the command line)
        parts += [tx(g(N_("What the data said")), "h2"), '<ul lang="en">'] + [f"<li>{_esc(n)}</li>" for n in notes_run]
        parts += ["</ul>"]
    skipped = (quality or {}).get("skipped_files") or []
    if skipped:
        parts += [tx(g(N_("Files not read")), "h2"), "<ul>"] + [
            f'<li class="warn">{_esc(s_.get("source", ""))}: {_esc(s_.get("reason", ""))}</li>' for s_ in skipped
        ] + ["</ul>"]
    if charts:
        parts.append(tx(g(N_("Charts")), "h2"))
        parts += [f'<p><img src="{_esc(c)}" alt="{_esc(Path(c).stem.replace("_", " "))}"></p>' for c in charts]
    if data:
        parts += [tx(g(N_("Files")), "h2"), "<ul>"]
        for r in data:
            size = (out_dir / r).stat().st_size if (out_dir / r).exists() else 0
            note = notes.get(r)
            cls = ' class="warn"' if r in team else ""
            parts.append(f'<li><a href="{_esc(r)}">{_esc(r)}</a> ('
                         + tx(lambda t, size=size: t.gettext("{n} kB").format(n=t.number(size / 1024)))
                         + ")" + (" — " + tx(note, "span", cls) if note else "") + "</li>")
        parts.append("</ul>")
    parts += [f"<p><small>{tx(g(BORDER_NOTE))}</small></p>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _animal_table(page: Page, tracks: pd.DataFrame, crossings: pd.DataFrame | None, quality: dict[str, Any] | None,
                  summary: pd.DataFrame | None = None) -> str:
    from telemetry.trajectory.summary import track_summary

    tx, g = page.text, translated
    s = (track_summary(tracks) if summary is None else summary).copy(deep=False)  # (index replaced below)
    s.index = s.index.astype(str)
    success: dict[str, list[float]] = {}
    for f in (quality or {}).get("files", []):
        for a in f.get("animals", []):
            if a.get("fix_success_pct") is not None:
                success.setdefault(str(a["animal_id"]), []).append(float(a["fix_success_pct"]))
    n_cross = (crossings[crossings["kind"] == "crossing"]["animal_id"].astype(str).value_counts()
               if crossings is not None and len(crossings) else pd.Series(dtype=np.int64))
    head = "<table><tr>" + "".join(f"<th>{tx(g(h))}</th>" for h in (
        N_("animal"), N_("usable fixes"), N_("flagged"), N_("first day"), N_("last day"), N_("days"),
        N_("fix success %"), N_("distance km"), N_("crossings"))) + "</tr>"

    def num(v: Any, nd: int) -> str:
        return "" if v is None or pd.isna(v) else tx(lambda t: t.number(float(v), nd))

    rows = []
    for aid, r in s.iterrows():  # one row per animal: a display table, not a hot path
        fs = success.get(aid)
        first = r["first"].strftime("%Y-%m-%d") if pd.notna(r["first"]) else ""
        last = r["last"].strftime("%Y-%m-%d") if pd.notna(r["last"]) else ""
        rows.append(
            f"<tr><td>{_esc(aid)}</td><td class=n>{num(int(r['usable']), 0)}</td>"
            f"<td class=n>{num(int(r['flagged']), 0)}</td>"
            f"<td>{first}</td><td>{last}</td><td class=n>{num(r['days'], 0)}</td>"
            f"<td class=n>{num(np.mean(fs), 1) if fs else ''}</td>"
            f"<td class=n>{num(r.get('distance_km', np.nan), 0)}</td>"
            f"<td class=n>{num(int(n_cross.get(aid, 0)), 0)}</td></tr>")
    return head + "".join(rows) + "</table>"


def _fmt(v: Any, nd: int) -> str:
    return "" if v is None or pd.isna(v) else f"{float(v):.{nd}f}"
