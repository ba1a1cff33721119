"""What the trajectory steps found out about the data, in plain sentences.

Processed tracks carry, in ``attrs``, what the steps estimated or noticed: the location-error
model (``error_model``: UERE per error class, estimated / calibrated / default), each animal's
movement model (``smooth``), its behavioural-state fit (``states``) and whether its speeds fit
the species profile (``profile_check``). :func:`report_lines` turns them into the lines that
``process``, ``run`` and ``inspect`` print and that the run summary records.

Examples
--------
>>> attrs = {"error_model": {"3D": {"uere_m": 4.1, "ci_low_m": 3.9, "ci_high_m": 4.3,
...          "source": "estimated", "n_fixes": 500}, "note": "maximum likelihood"},
...          "profile_check": {"A": {"fits": False, "message": "A: too fast"}}}
>>> for line in report_lines(attrs):
...     print(line)
location error (UERE, per axis x HDOP): 3D 4.1 m (95 % 3.9-4.3, estimated from 500 fixes)
profile: A: too fast
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telemetry.trajectory.error_model import MIXED_CLASS_NOTE

__all__ = ["report_lines", "uere_summary", "processing_summary"]


def uere_summary(error_model: Mapping[str, Any]) -> str:
    """One line: the UERE of every error class with its interval and where it came from."""
    parts = []
    for cls, v in error_model.items():
        if cls == "note" or not isinstance(v, Mapping):
            continue
        src = v.get("source", "default")
        if src == "default":
            what = "default: not estimable from these data"
        elif v.get("ci_low_m") is not None and v.get("ci_high_m") is not None:
            what = f"95 % {v['ci_low_m']:g}-{v['ci_high_m']:g}, {src} from {v.get('n_fixes', 0)} fixes"
        else:
            what = f"{src} from {v.get('n_fixes', 0)} fixes"
        parts.append(f"{cls} {v['uere_m']:g} m ({what})")
    return "location error (UERE, per axis x HDOP): " + "; ".join(parts) if parts else ""


def report_lines(attrs: Mapping[str, Any]) -> list[str]:
    """The sentences worth printing about processed tracks (see the module docstring): of the
    error model's ``note``, what the data did not identify, and the caveat on fixes of unknown
    type (:data:`telemetry.trajectory.error_model.MIXED_CLASS_NOTE`) where that class was estimated.

    >>> em = {"unknown": {"uere_m": 4.0, "source": "estimated", "n_fixes": 900},
    ...       "note": "maximum likelihood; " + MIXED_CLASS_NOTE + ": so se_m is too narrow for 2D fixes"}
    >>> report_lines({"error_model": em})[1]
    'location error: the fixes of unknown type share one UERE: so se_m is too narrow for 2D fixes'
    """
    lines = []
    if attrs.get("deployments_from"):
        lines.append("deployments: from " + ", ".join(attrs["deployments_from"])
                     + " (fixes outside their animal's deployment are flagged outside_deployment)")
    em = attrs.get("error_model")
    if em:
        line = uere_summary(em)
        if line:
            lines.append(line)
        note = str(em.get("note", ""))
        if "not identified" in note:
            lines.append("location error: " + note.split("; ", 1)[-1])
        else:  # (the caveat on fixes of unknown type, when that class was estimated)
            lines += ["location error: " + part for part in note.split("; ") if part.startswith(MIXED_CLASS_NOTE)]
    for entry in (attrs.get("profile_check") or {}).values():
        if not entry.get("fits", True) and entry.get("message"):
            lines.append(f"profile: {entry['message']}")
    for animal, entry in (attrs.get("states") or {}).items():
        if entry.get("warning"):
            lines.append(f"states: {animal}: {entry['warning']}")
        elif entry.get("n_states") is None and entry.get("reason"):
            lines.append(f"states: {animal}: no behavioural states: {entry['reason']}")
    return lines


def _plain(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None, tuples lists, numpy scalars Python ones."""
    import math

    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def processing_summary(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What the steps estimated, per run and per animal, for ``quality.json`` (JSON-safe).

    ``species`` (the profile), ``error_model`` (UERE per class with interval and source),
    ``animals`` (per animal: ``profile`` check, ``movement_model`` and the behavioural-state
    fit — number of states, labels, each state's share of the fixes and mean step (m; none for
    resting read from the smoother), converged, EM iterations — or the reason there is none) and
    ``notes`` (the lines of :func:`report_lines`).

    Examples
    --------
    >>> s = processing_summary({"profile_check": {"A": {"fits": True}}, "smooth": {"A": {"model": "BM", "bic": {}}},
    ...                         "states": {"A": {"n_states": 2, "labels": ["resting", "moving"], "share": [0.6, 0.4],
    ...                                          "step_mean_m": [None, 850.0], "converged": True, "em_iterations": 12,
    ...                                          "loglik": -10.0}}})
    >>> s["animals"]["A"]["movement_model"], s["animals"]["A"]["profile"]["fits"]
    ('BM', True)
    >>> s["animals"]["A"]["states"]["step_mean_m"], s["animals"]["A"]["states"]["converged"]
    ([None, 850.0], True)
    """
    animals: dict[str, dict[str, Any]] = {}
    for animal, entry in (attrs.get("profile_check") or {}).items():
        animals.setdefault(str(animal), {})["profile"] = entry
    for animal, entry in (attrs.get("smooth") or {}).items():
        keep = {k: entry.get(k) for k in ("model", "estimated", "still_share", "n_fixes", "note") if k in entry}
        animals.setdefault(str(animal), {})["movement_model"] = keep.pop("model", None)
        animals[str(animal)]["smoothing"] = keep
    for animal, entry in (attrs.get("states") or {}).items():
        # issue 14's per-animal diagnostics: converged, iterations, each state's mean step and share
        keep = {k: entry.get(k) for k in ("n_states", "labels", "share", "step_mean_m", "converged", "em_iterations",
                                          "reason", "warning") if k in entry}
        animals.setdefault(str(animal), {})["states"] = keep
    params = attrs.get("parameters") or {}
    return _plain({
        "species": params.get("species"),
        "error_model": attrs.get("error_model"),
        "animals": animals,
        "notes": report_lines(attrs),
    })
