"""The alerts as text, JSON, CSV, an offline page with a map per alert (``alerts.html``) and an
e-mail through the user's own SMTP server.

Alerts hold exact positions of a sensitive species: every format says it is internal. The page is
one self-contained file (maps inlined as PNG, no script, no network): it opens on a ranger's
laptop in the field.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telemetry.io.atomic import atomic_write

__all__ = ["format_alerts", "write_alerts_page", "send_alerts", "ALERT_FORMATS"]

ALERT_FORMATS = ("text", "json", "csv")

_NOTE = "INTERNAL: exact positions of a sensitive species; do not forward outside the team."


def _iso(t: Any) -> str:
    return "" if t is None or pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_alerts(table: pd.DataFrame, fmt: str = "text") -> str:
    """The alerts as ``text`` (one line each), ``json`` (a list of objects) or ``csv``.

    >>> t = pd.DataFrame({"animal_id": ["SL01"], "kind": ["mortality"], "severity": ["critical"],
    ...                   "time": pd.to_datetime(["2023-02-01T10:00"], utc=True),
    ...                   "since": pd.to_datetime(["2023-01-20T06:00"], utc=True),
    ...                   "lon": [77.123456], "lat": [43.5], "evidence": ["12 days within 30 m"]})
    >>> print(format_alerts(t), end="")
    CRITICAL  mortality  SL01  2023-02-01T10:00:00Z  since 2023-01-20T06:00:00Z  at 43.50000N 77.12346E  12 days within 30 m
    """
    rows = [{"animal_id": str(r.animal_id), "kind": r.kind, "severity": r.severity, "time": _iso(r.time),
             "since": _iso(r.since), "lon": None if pd.isna(r.lon) else round(float(r.lon), 6),
             "lat": None if pd.isna(r.lat) else round(float(r.lat), 6), "evidence": r.evidence}
            for r in table.itertuples(index=False)]
    if fmt == "json":
        return json.dumps({"note": _NOTE, "alerts": rows}, ensure_ascii=False, indent=1) + "\n"
    if fmt == "csv":
        return pd.DataFrame(rows, columns=list(table.columns)).to_csv(index=False)
    if fmt != "text":
        from telemetry.errors import TelemetryError

        raise TelemetryError(f"--format: unknown alert format {fmt!r} (one of {', '.join(ALERT_FORMATS)})")
    lines = []
    for r in rows:
        where = (f"at {abs(r['lat']):.5f}{'N' if r['lat'] >= 0 else 'S'} {abs(r['lon']):.5f}{'E' if r['lon'] >= 0 else 'W'}"
                 if r["lat"] is not None and r["lon"] is not None else "no position")
        lines.append(f"{r['severity'].upper():<8}  {r['kind']}  {r['animal_id']}  {r['time']}  since {r['since']}  "
                     f"{where}  {r['evidence']}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_alerts_page(out: str | os.PathLike[str], table: pd.DataFrame, tracks: pd.DataFrame | None = None, *,
                      title: str = "Collar alerts", max_maps: int = 50) -> Path:
    """``alerts.html``: the alerts, most severe first, each with a small map of the place and the
    animal's last days of fixes (PNG, inlined); at most ``max_maps`` maps (the most severe)."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', '<head><meta charset="utf-8">', f"<title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:1em auto;color:#222}"
             ".alert{border:1px solid #ccc;border-radius:4px;padding:6px 10px;margin:10px 0;display:flex;gap:12px}"
             ".critical{border-left:8px solid #b00020}.warning{border-left:8px solid #e6a100}"
             ".info{border-left:8px solid #4a7ebb}.internal{color:#b00020;font-weight:bold}"
             "img{border:1px solid #ddd}.ev{color:#444}</style></head>", "<body>",
             f"<h1>{e(title)}</h1>", f'<p class="internal">{e(_NOTE)}</p>']
    if table.empty:
        parts.append("<p>No alerts.</p>")
    counts = table["severity"].value_counts()
    parts.append("<p>" + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("critical", "warning", "info")) + "</p>")
    # each animal's rows found once, not once per alert
    rows_of = (tracks.groupby(tracks["animal_id"].astype(str), observed=True).indices
               if tracks is not None and len(tracks) else {})
    for k, r in enumerate(table.itertuples(index=False)):
        own = tracks.iloc[rows_of[str(r.animal_id)]] if str(r.animal_id) in rows_of else None
        png = _alert_map(r, own) if k < max_maps else None
        img = f'<img alt="map" width="300" src="data:image/png;base64,{png}">' if png else ""
        where = f"{r.lat:.5f}°N {r.lon:.5f}°E" if pd.notna(r.lat) and pd.notna(r.lon) else "no position"
        parts.append(f'<div class="alert {e(r.severity)}">{img}<div><strong>{e(r.severity.upper())}: {e(r.kind)}'
                     f"</strong> — {e(str(r.animal_id))}<br>{e(_iso(r.time))} (since {e(_iso(r.since))})<br>"
                     f'{e(where)}<p class="ev">{e(r.evidence)}</p></div></div>')
    parts += ["</body>", "</html>", ""]
    text = "\n".join(parts)
    path = Path(out)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def _alert_map(r: Any, sub: pd.DataFrame | None) -> str | None:
    """A small map around one alert: the animal's fixes (``sub``) of the 3 days before it and the place."""
    if pd.isna(r.lon) or pd.isna(r.lat):
        return None
    import matplotlib as mpl
    from matplotlib.figure import Figure

    with mpl.rc_context({"font.size": 7}):
        fig = Figure(figsize=(3.0, 2.6), dpi=100)
        ax = fig.add_subplot()
        if sub is not None and len(sub):
            t = pd.to_datetime(sub["time"], utc=True)
            near = sub[(t <= r.time) & (t >= r.time - pd.Timedelta(days=3))]
            ax.plot(near["lon"].to_numpy(dtype=float), near["lat"].to_numpy(dtype=float), ".-", color="#888",
                    ms=2, lw=0.6)
        ax.plot([r.lon], [r.lat], "o", color={"critical": "#b00020", "warning": "#e6a100"}.get(r.severity, "#4a7ebb"),
                ms=8, mec="k")
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        half = max(x1 - x0, y1 - y0, 0.005) / 2 * 1.2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        _borders(ax, (cx - half, cy - half, cx + half, cy + half))
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy - half, cy + half)
        ax.set_aspect(1.0 / max(np.cos(np.radians(cy)), 0.2))
        ax.tick_params(labelsize=6)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _borders(ax: Any, box: tuple[float, float, float, float]) -> None:
    import shapely

    from telemetry.corridor.borders import border_lines

    lines = border_lines()
    frame = shapely.box(*box)
    for g in lines.geometry.values[shapely.intersects(lines.geometry.values, frame)]:
        for part in shapely.get_parts(shapely.intersection(g, frame)):
            xy = shapely.get_coordinates(part)
            ax.plot(xy[:, 0], xy[:, 1], color="#333", lw=1.0, ls="--")


def send_alerts(table: pd.DataFrame, *, smtp: str, to: list[str], sender: str, subject: str | None = None,
                timeout_s: float = 30.0) -> int:
    """E-mail the alerts (text, one line each) through the SMTP server ``smtp`` (``host[:port]``,
    the user's own; STARTTLS when the server offers it). Returns the number of alerts sent;
    nothing is sent when there are none. A server that cannot be reached is a TelemetryError."""
    import smtplib
    from email.message import EmailMessage

    from telemetry.errors import TelemetryError

    if table.empty:
        return 0
    host, _, port = smtp.partition(":")
    msg = EmailMessage()
    n_crit = int((table["severity"] == "critical").sum())
    msg["Subject"] = subject or (f"Collar alerts: {n_crit} critical, {len(table)} in all" if n_crit
                                 else f"Collar alerts: {len(table)}")
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg.set_content(_NOTE + "\n\n" + format_alerts(table, "text"))
    try:
        with smtplib.SMTP(host, int(port or 25), timeout=timeout_s) as server:
            server.ehlo()
            if server.has_extn("starttls"):
                server.starttls()
                server.ehlo()
            server.send_message(msg)
    except (OSError, smtplib.SMTPException) as err:
        raise TelemetryError(f"--smtp {smtp}: could not send the alerts: {err}") from None
    return len(table)
