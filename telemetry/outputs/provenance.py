"""What a public file says about itself, in words: study, period, licence, tool version, and what
was generalised (grid, months, disclosure threshold, embargo), in any language of the pages.

The numbers come from the file's metadata (:func:`telemetry.outputs.layers.export_metadata`),
so the words can never disagree with the GeoJSON they describe.
"""

from __future__ import annotations

from typing import Any

from telemetry.outputs.i18n import Lang, lang  # noqa: F401 - lang: the doctests

__all__ = ["provenance_text", "generalisation_text"]


def provenance_text(t: Lang, meta: dict[str, Any]) -> list[str]:
    """Study, period, licence and tool version of a public file (its metadata ``meta``), in ``t``.

    >>> provenance_text(lang("en"), {"study": "Tien Shan", "period": {"first": "2021-03", "last": "2023-01"},
    ...                              "licence": "CC-BY-4.0", "tool_version": "0.1.0"})
    ['Study: Tien Shan. Period of the data: March 2021 to January 2023.', 'Licence: CC-BY-4.0. Made with telemetry 0.1.0.']
    """
    _ = t.gettext
    period = meta.get("period") or {}
    first, last = period.get("first"), period.get("last")
    when = (_("{first} to {last}").format(first=t.month(first), last=t.month(last)) if first and last else "–")
    return [_("Study: {study}. Period of the data: {period}.").format(study=meta.get("study") or "–", period=when),
            _("Licence: {licence}. Made with telemetry {version}.").format(
                licence=meta.get("licence", ""), version=meta.get("tool_version", ""))]


def generalisation_text(t: Lang, gen: dict[str, Any], min_confidence: float | None = None) -> str:
    """What the public files give away, in ``t``: the grid, months, the disclosure threshold, the
    embargo and the crossing confidence (``min_confidence``, else the one in ``gen``).

    >>> generalisation_text(lang("ru"), {"grid_deg": 0.1, "disclosure_control": {"hotspots": {"min_animals": 3}}})[:43]
    'Места показаны только как ячейки сетки 0,1°'
    """
    _ = t.gettext
    grid = gen.get("grid_deg")
    parts = [_("Places are shown only as cells of a {grid}° grid and times only as calendar months (UTC).").format(
        grid=t.decimal(grid)) if grid is not None else
        _("Times are shown only as calendar months (UTC).")]
    dc = gen.get("disclosure_control") or {}
    k = next((v.get("min_animals") for v in dc.values() if isinstance(v, dict) and v.get("min_animals")), None)
    if k:
        parts.append(t.ngettext("Places and counts of fewer than {n} animal are merged or left out.",
                                "Places and counts of fewer than {n} animals are merged or left out.",
                                int(k)).format(n=t.number(k)))
    if gen.get("embargo_months"):
        parts.append(t.ngettext("The data end {n} month before the last fix (embargo).",
                                "The data end {n} months before the last fix (embargo).",
                                int(gen["embargo_months"])).format(n=t.number(gen["embargo_months"])))
    parts.append(_("Why: exact places and times of collared animals can expose them to poaching and "
                   "disturbance; the generalisation follows the GBIF guidance for sensitive species (Chapman 2020)."))
    if min_confidence is None:
        min_confidence = next((v.get("min_confidence") for v in dc.values()
                               if isinstance(v, dict) and v.get("min_confidence") is not None), None)
    if min_confidence is not None:
        parts.append(_("Crossings are counted only when their confidence is at least {c}.").format(
            c=t.decimal(min_confidence)))
    return " ".join(parts)
