"""Location error of each fix: classes, the error model, and calibration from stationary collars.

Every located fix belongs to one *error class*: ``3D``, ``2D`` or ``unknown`` GPS fixes (the
file does not say which), or an Argos location class (``argos 3`` … ``argos Z``). The 1-σ
error per coordinate (east and north, metres) of a fix is

    sigma = UERE_class × HDOP       (GPS; a fix without HDOP takes its class's median HDOP, or 1)
    sigma = UERE_class              (Argos: the class is the error)

following the user-equivalent range error (UERE) model of GPS (Langley 1999, "Dilution of
precision", GPS World) as used for animal tracking by Fleming et al. (2020, "A comprehensive
framework for handling location error in animal tracking data", bioRxiv
10.1101/2020.06.12.130195; the ``ctmm`` package). Note the convention here: the UERE
multiplies HDOP to give the error *per axis*; the radial RMS error is ``sqrt(2)`` times that.

The UERE of each class comes from, in order of preference:

1. **calibration**: fixes of collars left at one place (``telemetry calibrate``,
   :func:`calibrate`), the approach recommended by Fleming et al. (2020);
2. **estimation** from the tracks themselves by maximum likelihood, jointly with the
   movement model (:func:`telemetry.trajectory.smooth.smooth`);
3. **defaults** (``config.SmoothParams``), only where neither is possible; the model says
   so per class (``source``).

:class:`ErrorModel` holds the values with their 95 % confidence intervals and where each came
from; it is what ``inspect``, the run summary and every output's metadata report.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> n = 400
>>> hdop = rng.uniform(1.0, 3.0, n)
>>> fixes = pd.DataFrame({"animal_id": "test-collar", "fix_type": "3D", "hdop": hdop,
...     "lon": 77.0 + rng.normal(0, 1, n) * 5.0 * hdop / 81_500.0,   # 5 m x HDOP per axis
...     "lat": 43.0 + rng.normal(0, 1, n) * 5.0 * hdop / 111_100.0})
>>> model = calibrate(fixes)
>>> round(model.uere_m["3D"])
5
>>> model.source["3D"]
'calibrated'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from telemetry.errors import TelemetryError
from telemetry.schema import ARGOS_CLASSES

__all__ = ["ERROR_CLASSES", "ErrorModel", "error_classes", "calibrate", "default_error_model"]

GPS_CLASSES: tuple[str, ...] = ("3D", "2D", "unknown")
ERROR_CLASSES: tuple[str, ...] = GPS_CLASSES + tuple(f"argos {c}" for c in ARGOS_CLASSES)
"""Error classes in code order: GPS 3D, 2D, unknown, then the Argos location classes."""
MIXED_CLASS_NOTE = "the fixes of unknown type share one UERE"
"""How the error model's ``note`` begins its caveat on the ``unknown`` class (a file without a
fix type: its 3D and 2D fixes, whose errors differ, get one UERE); printed by
:func:`telemetry.trajectory.diagnostics.report_lines`."""

_N_GPS = len(GPS_CLASSES)


def error_classes(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Error class code (index into :data:`ERROR_CLASSES`) and HDOP factor of every row.

    Parameters
    ----------
    df : DataFrame
        Canonical fix table (``fix_type``, ``hdop``, ``argos_lc`` are all optional).

    Returns
    -------
    codes : ndarray of int8
        ``0`` 3D, ``1`` 2D, ``2`` unknown GPS (no fix type, or one the file does not give),
        ``3 + k`` Argos class ``ARGOS_CLASSES[k]`` (an Argos fix without a class is ``argos Z``).
    factor : ndarray of float64
        What the class UERE is multiplied by (dimensionless): HDOP for GPS fixes (a missing or
        non-positive HDOP takes the median HDOP of its class in ``df``, or 1 when the class has
        none), 1 for Argos fixes.

    Examples
    --------
    >>> df = pd.DataFrame({"fix_type": ["3D", "2D", None, "argos"], "hdop": [1.5, None, 2.0, None],
    ...                    "argos_lc": [None, None, None, "A"]})
    >>> codes, factor = error_classes(df)
    >>> [ERROR_CLASSES[c] for c in codes], factor.tolist()
    (['3D', '2D', 'unknown', 'argos A'], [1.5, 1.0, 2.0, 1.0])
    """
    n = len(df)
    codes = np.full(n, 2, dtype=np.int8)
    if "fix_type" in df.columns:
        ft = df["fix_type"]
        codes[_eq(ft, "3D")] = 0
        codes[_eq(ft, "2D")] = 1
        argos = _eq(ft, "argos")
        if argos.any():
            lc = df["argos_lc"].astype("string") if "argos_lc" in df.columns else pd.Series(pd.NA, index=df.index)
            k = pd.Categorical(lc, categories=list(ARGOS_CLASSES)).codes.astype(np.int64)
            k = np.where(k < 0, len(ARGOS_CLASSES) - 1, k)  # no class given: the worst
            codes[argos] = (_N_GPS + k[argos]).astype(np.int8)
    hdop = (pd.to_numeric(df["hdop"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if "hdop" in df.columns else np.full(n, np.nan))
    good = np.isfinite(hdop) & (hdop > 0)
    factor = np.where(good, hdop, np.nan)
    for c in range(_N_GPS):
        in_c = codes == c
        miss = in_c & ~good
        if miss.any():
            known = hdop[in_c & good]
            factor[miss] = float(np.median(known)) if known.size else 1.0
    factor[codes >= _N_GPS] = 1.0
    return codes, factor


def _eq(col: pd.Series, value: str) -> np.ndarray:
    return col.eq(value).fillna(False).to_numpy(dtype=bool)


@dataclass(frozen=True)
class ErrorModel:
    """UERE per error class (m per unit HDOP, per axis; Argos: m per axis), with provenance.

    Attributes
    ----------
    uere_m : dict
        Class name → UERE (m).
    ci_m : dict
        Class name → (low, high) 95 % confidence interval of the UERE (m); ``(nan, nan)`` for
        defaults.
    source : dict
        Class name → ``"calibrated"``, ``"estimated"`` or ``"default"``.
    n_fixes : dict
        Class name → fixes the value rests on (0 for defaults).
    note : str
        How it was obtained (method, data), for the output metadata.
    hdop_power : dict
        Class name → exponent ``g`` of ``sigma = UERE × HDOP**g`` (1 when absent). Estimated for
        the ``unknown`` class only when ``smooth.error_hdop_powers`` lists candidates (off by
        default: the likelihood's choice left 2D fixes' ``se_m`` too narrow; see that parameter).
    """

    uere_m: dict[str, float]
    ci_m: dict[str, tuple[float, float]] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    n_fixes: dict[str, int] = field(default_factory=dict)
    note: str = ""
    hdop_power: dict[str, float] = field(default_factory=dict)

    def values(self) -> np.ndarray:
        """UERE (m) in :data:`ERROR_CLASSES` order (NaN for a class the model lacks)."""
        return np.array([self.uere_m.get(c, np.nan) for c in ERROR_CLASSES], dtype=float)

    def powers(self) -> np.ndarray:
        """HDOP exponent per class in :data:`ERROR_CLASSES` order (1 where not given)."""
        return np.array([self.hdop_power.get(c, 1.0) for c in ERROR_CLASSES], dtype=float)

    def sigma_m(self, codes: np.ndarray, factor: np.ndarray, floor_m: float = 0.0) -> np.ndarray:
        """Per-fix 1-σ error per axis (m) for the classes and factors of :func:`error_classes`."""
        return np.maximum(self.values()[codes] * factor ** self.powers()[codes], floor_m)

    def merged(self, other: ErrorModel) -> ErrorModel:
        """This model with the classes of ``other`` that this one lacks (e.g. defaults)."""
        out = {k: dict(getattr(other, k)) for k in ("uere_m", "ci_m", "source", "n_fixes")}
        for k in out:
            out[k].update(getattr(self, k))
        power = {c: v for c, v in other.hdop_power.items() if c not in self.uere_m}
        power.update(self.hdop_power)
        return ErrorModel(**out, note=self.note or other.note, hdop_power=power)

    def to_dict(self, classes: list[str] | None = None) -> dict[str, Any]:
        """JSON-ready ``{class: {uere_m, ci_low_m, ci_high_m, source, n_fixes}, "note": ...}``."""
        names = classes if classes is not None else [c for c in ERROR_CLASSES if c in self.uere_m]
        out: dict[str, Any] = {}
        for c in names:
            lo, hi = self.ci_m.get(c, (math.nan, math.nan))
            out[c] = {"uere_m": _round(self.uere_m.get(c, math.nan)), "ci_low_m": _round(lo),
                      "ci_high_m": _round(hi), "source": self.source.get(c, "default"),
                      "n_fixes": int(self.n_fixes.get(c, 0))}
            if self.hdop_power.get(c, 1.0) != 1.0:
                out[c]["hdop_power"] = _round(self.hdop_power[c])
        out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorModel:
        """:meth:`to_dict`'s output back into a model (e.g. ``tracks.attrs["error_model"]``)."""
        uere, ci, src, n = {}, {}, {}, {}
        for name, v in data.items():
            if name == "note" or not isinstance(v, Mapping) or v.get("uere_m") is None:
                continue
            uere[name] = float(v["uere_m"])
            ci[name] = tuple(math.nan if v.get(k) is None else float(v[k]) for k in ("ci_low_m", "ci_high_m"))
            src[name] = str(v.get("source", "default"))
            n[name] = int(v.get("n_fixes", 0))
        power = {name: float(v["hdop_power"]) for name, v in data.items()
                 if isinstance(v, Mapping) and v.get("hdop_power") is not None}
        return cls(uere_m=uere, ci_m=ci, source=src, n_fixes=n, note=str(data.get("note", "")), hdop_power=power)

    def to_frame(self) -> pd.DataFrame:
        """One row per class: ``class, uere_m, ci_low_m, ci_high_m, source, n_fixes`` (the
        calibration table ``telemetry calibrate`` writes)."""
        d = self.to_dict()
        note = d.pop("note")
        rows = [{"class": c, **v} for c, v in d.items()]
        out = pd.DataFrame(rows, columns=["class", "uere_m", "ci_low_m", "ci_high_m", "source", "n_fixes"])
        out.attrs["note"] = note
        return out

    @classmethod
    def from_frame(cls, table: pd.DataFrame, where: str = "calibration table",
                   most_m: Mapping[str, float] | None = None) -> ErrorModel:
        """Read :meth:`to_frame`'s table back (e.g. a calibration CSV); unknown classes,
        non-positive values and values above ``most_m`` (m per class, when given: see
        :func:`calibrate`) are a :class:`~telemetry.errors.TelemetryError`."""
        need = {"class", "uere_m"}
        if not need <= set(table.columns):
            raise TelemetryError(f"needs columns class and uere_m, has {', '.join(map(str, table.columns))}", where)
        uere, ci, src, n = {}, {}, {}, {}
        for i, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
            name = str(row["class"]).strip()
            if name not in ERROR_CLASSES:
                raise TelemetryError(f"unknown error class {name!r}; known: {', '.join(ERROR_CLASSES)}",
                                     where, line=i, column="class")
            try:
                value = float(row["uere_m"])
            except (TypeError, ValueError):
                value = math.nan
            if not (value > 0 and math.isfinite(value)):
                raise TelemetryError(f"uere_m must be a positive number of metres, got {row['uere_m']!r}",
                                     where, line=i, column="uere_m")
            top = (most_m or {}).get(name, math.inf)
            if value > top:
                raise TelemetryError(f"{name} uere_m {value:g} m is more than the {top:g} m a collar of that class can "
                                     "err by; calibrate again on fixes of collars left at one place",
                                     where, line=i, column="uere_m")
            uere[name] = value
            lo, hi = row.get("ci_low_m", math.nan), row.get("ci_high_m", math.nan)
            ci[name] = (float(lo) if pd.notna(lo) else math.nan, float(hi) if pd.notna(hi) else math.nan)
            source = row.get("source")
            src[name] = str(source) if isinstance(source, str) and source.strip() else "calibrated"
            nn = row.get("n_fixes", 0)
            n[name] = int(nn) if pd.notna(nn) else 0
        return cls(uere_m=uere, ci_m=ci, source=src, n_fixes=n, note=str(table.attrs.get("note", "")))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def exact(self) -> dict[str, Any]:
        """Every field at full precision (JSON-ready; :meth:`to_dict` rounds for display):
        :meth:`from_exact` gives back an equal model.

        >>> m = ErrorModel({"3D": 4.123456789}, {"3D": (3.9, 4.4)}, {"3D": "estimated"}, {"3D": 812}, "ml")
        >>> ErrorModel.from_exact(json.loads(json.dumps(m.exact()))) == m
        True
        """
        return {"uere_m": dict(self.uere_m), "ci_m": {k: list(v) for k, v in self.ci_m.items()},
                "source": dict(self.source), "n_fixes": {k: int(v) for k, v in self.n_fixes.items()},
                "note": self.note, "hdop_power": dict(self.hdop_power)}

    @classmethod
    def from_exact(cls, data: Mapping[str, Any]) -> ErrorModel:
        """:meth:`exact`'s output back into the model."""
        return cls(uere_m={k: float(v) for k, v in data["uere_m"].items()},
                   ci_m={k: (float(v[0]), float(v[1])) for k, v in data["ci_m"].items()},
                   source=dict(data["source"]), n_fixes={k: int(v) for k, v in data["n_fixes"].items()},
                   note=str(data["note"]), hdop_power={k: float(v) for k, v in data["hdop_power"].items()})


def _round(x: float) -> float | None:
    return None if not math.isfinite(x) else float(f"{x:.4g}")


def default_error_model(uere_3d_m: float, uere_2d_m: float, uere_unknown_m: float,
                        argos_error_m: Mapping[str, float]) -> ErrorModel:
    """The last-resort UERE table from the configuration (``source = "default"``)."""
    uere = {"3D": uere_3d_m, "2D": uere_2d_m, "unknown": uere_unknown_m}
    worst = max(argos_error_m.values()) if argos_error_m else 10_000.0
    for c in ARGOS_CLASSES:
        uere[f"argos {c}"] = float(argos_error_m.get(c, worst))
    return ErrorModel(uere_m=uere, ci_m={c: (math.nan, math.nan) for c in uere},
                      source={c: "default" for c in uere}, n_fixes={c: 0 for c in uere},
                      note="configuration defaults")


def calibrate(fixes: pd.DataFrame, *, by: str = "animal_id", min_fixes: int = 10,
              max_iterations: int = 50, most_m: Mapping[str, float] | None = None) -> ErrorModel:
    """UERE per error class from stationary test fixes (collars left at one place).

    Each group of rows (``by``: one collar, or one test site) is a collar that did not move;
    its position is unknown and estimated (the error-weighted mean of its fixes). The
    maximum-likelihood UERE of class ``c`` is

        UERE_c² = Σ_{i in c} |z_i − μ_g(i)|² / h_i²  /  (2 n_c (1 − G / N))

    (``h`` the HDOP factor, ``G`` groups, ``N`` fixes: the ``2 G`` degrees of freedom spent on
    the positions are shared among the classes), iterated with the weighted means. The 95 %
    interval is the chi-square interval of a variance with ``2 n_c (1 − G/N)`` degrees of
    freedom (Fleming et al. 2020 fit the same model with ``ctmm::uere.fit``).

    Parameters
    ----------
    fixes : DataFrame
        Canonical fixes (``lon``, ``lat``; ``fix_type``, ``hdop``, ``argos_lc`` as available;
        rows with a ``flag`` or without coordinates are skipped).
    by : str
        Column naming the stationary collar or site of each row.
    min_fixes : int
        Classes with fewer fixes are not calibrated (left out of the model).
    max_iterations : int
        Most rounds of (means, UERE).
    most_m : mapping, optional
        The largest UERE (m) believable per class (the CLI: ``smooth.error_max_factor`` times
        the default). A class calibrated above it raises :class:`TelemetryError` naming the
        collars whose own fixes scatter that far: they moved (an animal's track is not a
        stationary test), or fixes of several sites share one ``by`` value. A calibration so
        wide would stop every fix of the class from being smoothed.

    Returns
    -------
    ErrorModel
        ``source = "calibrated"`` for every class with at least ``min_fixes`` fixes.

    Raises
    ------
    TelemetryError
        No located fix, no ``by`` column, no class with ``min_fixes`` fixes, or (``most_m``)
        an implausible UERE.
    """
    from telemetry.trajectory.projection import project_by_group

    ok = fixes["lon"].notna().to_numpy() & fixes["lat"].notna().to_numpy()
    if "flag" in fixes.columns:
        ok &= fixes["flag"].isna().to_numpy()
    if by not in fixes.columns:
        raise TelemetryError(f"calibration fixes need a {by!r} column naming the stationary collar of each fix")
    ok &= fixes[by].notna().to_numpy()
    d = fixes.loc[ok]
    if len(d) < min_fixes:
        raise TelemetryError(f"calibration needs at least {min_fixes} located fixes, got {len(d)}")
    codes, factor = error_classes(d)
    group, group_names = pd.factorize(d[by], sort=True)
    n_groups = int(group.max()) + 1
    x, y, _ = project_by_group(d["lon"].to_numpy(float), d["lat"].to_numpy(float), group, n_groups)
    n_cls = len(ERROR_CLASSES)
    counts = np.bincount(codes, minlength=n_cls)
    u2 = np.ones(n_cls)
    n = len(d)
    dof_share = max(1.0 - n_groups / n, 1e-6)
    for _ in range(max_iterations):
        wgt = 1.0 / (u2[codes] * factor**2)
        sw = np.bincount(group, wgt, minlength=n_groups)
        mx = np.bincount(group, wgt * x, minlength=n_groups) / sw
        my = np.bincount(group, wgt * y, minlength=n_groups) / sw
        e2 = ((x - mx[group]) ** 2 + (y - my[group]) ** 2) / factor**2
        new = np.bincount(codes, e2, minlength=n_cls) / np.maximum(2.0 * counts * dof_share, 1e-300)
        new = np.where(counts > 0, np.maximum(new, 1e-12), 1.0)
        done = np.allclose(new, u2, rtol=1e-10)
        u2 = new
        if done:
            break
    uere, ci, src, nf = {}, {}, {}, {}
    for c, name in enumerate(ERROR_CLASSES):
        if counts[c] < min_fixes:
            continue
        dof = 2.0 * counts[c] * dof_share
        # chi-square quantiles as scipy.stats.chi2.ppf computes them (importing scipy.stats costs
        # ~1.6 s at every command's start)
        lo = math.sqrt(u2[c] * dof / (2.0 * special.gammaincinv(dof / 2.0, 0.975)))
        hi = math.sqrt(u2[c] * dof / (2.0 * special.gammaincinv(dof / 2.0, 0.025)))
        uere[name] = math.sqrt(u2[c])
        ci[name] = (lo, hi)
        src[name] = "calibrated"
        nf[name] = int(counts[c])
    if not uere:
        raise TelemetryError(f"calibration: no error class has {min_fixes} or more located fixes")
    for name, u in uere.items():
        top = (most_m or {}).get(name, math.inf)
        if u > top:
            c = ERROR_CLASSES.index(name)
            mine = codes == c
            # each collar's own scatter of this class (m, per axis, HDOP 1): which ones moved
            own = np.sqrt(np.bincount(group[mine], e2[mine], minlength=n_groups)
                          / np.maximum(2.0 * np.bincount(group[mine], minlength=n_groups), 1.0))
            worst = np.argsort(-own)[:3]
            who = ", ".join(f"{group_names[g]} ({own[g]:.0f} m)" for g in worst if own[g] > top)
            raise TelemetryError(
                f"calibration: the {name} fixes scatter with a UERE of {u:.0f} m, more than the {top:.0f} m a "
                f"collar of that class can err by; not fixes of collars left at one place (per --by {by}): "
                f"{who or 'all of them together'}")
    return ErrorModel(uere_m=uere, ci_m=ci, source=src, n_fixes=nf,
                      note=f"calibrated on {n} fixes of {n_groups} stationary collar(s)")
