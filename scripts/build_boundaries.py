"""Build the bundled country borders ``telemetry/data/countries.parquet``.

Run once by a maintainer (the package never runs this at run time)::

    python scripts/build_boundaries.py [--src DIR] [--out FILE] [--detail world|central-asia]

Input: world-atlas 2.0.2 TopoJSON (``countries-10m.json``, ``countries-50m.json``),
a redistribution of Natural Earth 4.1.0 Admin-0 countries (public domain).
GDAL reads a TopoJSON ``countries`` layer; its CRS comes back empty but the
coordinates are WGS84 longitude/latitude (EPSG:4326).

Output: one GeoParquet file (zstd) with columns ``iso_a3, iso_n3, name,
resolution, geometry``. By default every country has the 1:10m geometry (5.6 MB;
borders anywhere in the world are then as good as the Tien Shan ones, and there is
no seam between resolutions); ``--detail central-asia`` keeps only Central Asia and
its neighbours (:data:`DETAIL_10M`) at 1:10m and the rest of the world at 1:50m.

Steps and why:

1. The TopoJSON is decoded here (:func:`decode_topojson`), not by GDAL, and rings that cross
   the antimeridian are unwrapped, cut at ±180° and shifted back, rings around a pole closed
   through it (``telemetry.trajectory.antimeridian.antimeridian_polygon``). GDAL joined such rings straight across the map:
   Russia came out inverted between 65 and 69° N and 71 and 71.5° N all round the globe, Fiji
   left slivers round the world near 16-17° S, and Antarctica south of 84° S was missing.
   Then ``shapely.make_valid`` on every geometry (about 50 of the 1:10m polygons are
   invalid after TopoJSON quantisation: self-touching rings, spikes), keeping
   only the polygonal parts (make_valid can return collapsed lines/points).
2. ISO 3166-1 alpha-3 from the numeric id via the embedded table
   :data:`ISO_NUMERIC_TO_ALPHA3`; features without an id (Kosovo, Somaliland,
   Baikonur, Siachen Glacier, ...) get a Natural Earth ``ADM0_A3`` code from
   :data:`NAME_FALLBACK` (not ISO codes: ISO has none for them).
3. An area two countries both claim goes to the smaller (:func:`resolve_overlaps`); none is a
   disputed area in this edition (:data:`DISPUTED_OVERLAPS`).
4. (mixed build only) 1:50m countries are clipped by the union of the 1:10m ones, so no point is
   in two countries where the two resolutions overlap. (Where a coarse line lies
   short of the fine one a sliver of no-country remains; these slivers are on
   the outer edge of the 1:10m block, far from Central Asia.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from telemetry.trajectory.antimeridian import antimeridian_polygon

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = Path("/work/shared/data/boundaries")
DEFAULT_OUT = ROOT / "telemetry" / "data" / "countries.parquet"

DETAIL_10M: tuple[str, ...] = (
    # Central Asia proper and the countries around the Tien Shan / Pamir / Altai
    "KAZ", "KGZ", "CHN", "UZB", "TJK", "TKM", "MNG", "RUS", "AFG", "PAK", "IND",
    # small entities inside or between them (else they would be 1:50m holes)
    "KAB",  # Baikonur (leased to Russia, inside Kazakhstan)
    "KAS",  # Siachen Glacier (disputed IND/PAK)
)
"""Countries kept at 1:10m; every country touching the sample's bbox is among them."""

# ISO 3166-1 numeric -> alpha-3 (complete list of officially assigned codes).
_ISO_TABLE = """
004 AFG 008 ALB 010 ATA 012 DZA 016 ASM 020 AND 024 AGO 028 ATG 031 AZE 032 ARG 036 AUS 040 AUT
044 BHS 048 BHR 050 BGD 051 ARM 052 BRB 056 BEL 060 BMU 064 BTN 068 BOL 070 BIH 072 BWA 074 BVT
076 BRA 084 BLZ 086 IOT 090 SLB 092 VGB 096 BRN 100 BGR 104 MMR 108 BDI 112 BLR 116 KHM 120 CMR
124 CAN 132 CPV 136 CYM 140 CAF 144 LKA 148 TCD 152 CHL 156 CHN 158 TWN 162 CXR 166 CCK 170 COL
174 COM 175 MYT 178 COG 180 COD 184 COK 188 CRI 191 HRV 192 CUB 196 CYP 203 CZE 204 BEN 208 DNK
212 DMA 214 DOM 218 ECU 222 SLV 226 GNQ 231 ETH 232 ERI 233 EST 234 FRO 238 FLK 239 SGS 242 FJI
246 FIN 248 ALA 250 FRA 254 GUF 258 PYF 260 ATF 262 DJI 266 GAB 268 GEO 270 GMB 275 PSE 276 DEU
288 GHA 292 GIB 296 KIR 300 GRC 304 GRL 308 GRD 312 GLP 316 GUM 320 GTM 324 GIN 328 GUY 332 HTI
334 HMD 336 VAT 340 HND 344 HKG 348 HUN 352 ISL 356 IND 360 IDN 364 IRN 368 IRQ 372 IRL 376 ISR
380 ITA 384 CIV 388 JAM 392 JPN 398 KAZ 400 JOR 404 KEN 408 PRK 410 KOR 414 KWT 417 KGZ 418 LAO
422 LBN 426 LSO 428 LVA 430 LBR 434 LBY 438 LIE 440 LTU 442 LUX 446 MAC 450 MDG 454 MWI 458 MYS
462 MDV 466 MLI 470 MLT 474 MTQ 478 MRT 480 MUS 484 MEX 492 MCO 496 MNG 498 MDA 499 MNE 500 MSR
504 MAR 508 MOZ 512 OMN 516 NAM 520 NRU 524 NPL 528 NLD 531 CUW 533 ABW 534 SXM 535 BES 540 NCL
548 VUT 554 NZL 558 NIC 562 NER 566 NGA 570 NIU 574 NFK 578 NOR 580 MNP 581 UMI 583 FSM 584 MHL
585 PLW 586 PAK 591 PAN 598 PNG 600 PRY 604 PER 608 PHL 612 PCN 616 POL 620 PRT 624 GNB 626 TLS
630 PRI 634 QAT 638 REU 642 ROU 643 RUS 646 RWA 652 BLM 654 SHN 659 KNA 660 AIA 662 LCA 663 MAF
666 SPM 670 VCT 674 SMR 678 STP 682 SAU 686 SEN 688 SRB 690 SYC 694 SLE 702 SGP 703 SVK 704 VNM
705 SVN 706 SOM 710 ZAF 716 ZWE 724 ESP 728 SSD 729 SDN 732 ESH 740 SUR 744 SJM 748 SWZ 752 SWE
756 CHE 760 SYR 762 TJK 764 THA 768 TGO 772 TKL 776 TON 780 TTO 784 ARE 788 TUN 792 TUR 795 TKM
796 TCA 798 TUV 800 UGA 804 UKR 807 MKD 818 EGY 826 GBR 831 GGY 832 JEY 833 IMN 834 TZA 840 USA
850 VIR 854 BFA 858 URY 860 UZB 862 VEN 876 WLF 882 WSM 887 YEM 894 ZMB
"""
_tokens = _ISO_TABLE.split()
ISO_NUMERIC_TO_ALPHA3: dict[str, str] = dict(zip(_tokens[0::2], _tokens[1::2]))
"""ISO 3166-1 numeric code (3 digits, zero padded) -> alpha-3 code."""

NAME_FALLBACK: dict[str, str] = {
    # world-atlas name -> code; Natural Earth ADM0_A3 codes for entities without an ISO code
    "Kosovo": "XKX",  # user-assigned code used by the EU and IMF
    "Somaliland": "SOL",
    "N. Cyprus": "CYN",
    "Cyprus U.N. Buffer Zone": "CNM",
    "Dhekelia": "ESB",
    "Akrotiri": "WSB",
    "Siachen Glacier": "KAS",
    "Baikonur": "KAB",
    "USNB Guantanamo Bay": "USG",
    "Indian Ocean Ter.": "IOA",
    "Coral Sea Is.": "CSI",
    "Spratly Is.": "PGA",
    "Clipperton I.": "CLP",
    "Bajo Nuevo Bank": "BJN",
    "Serranilla Bank": "SER",
    "Scarborough Reef": "SCR",
    "Ashmore and Cartier Is.": "ATC",  # shares Australia's numeric id 036 in world-atlas
}
"""Codes for features whose numeric id is missing or shared with another feature."""


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Make geometries valid and keep only their polygonal parts (as MultiPolygon)."""
    fixed = shapely.make_valid(geoms)
    out = np.empty(len(fixed), dtype=object)
    for i, g in enumerate(fixed):  # ~250 features: a loop over countries is fine
        parts = shapely.get_parts(g)
        # make_valid may return a GeometryCollection holding polygons and stray lines
        parts = np.concatenate([shapely.get_parts(p) for p in parts]) if len(parts) else parts
        polys = [p for p in parts if shapely.get_type_id(p) == 3 and not p.is_empty]
        out[i] = shapely.multipolygons(polys) if polys else None
    return out


def decode_topojson(path: Path, layer: str = "countries") -> list[dict]:
    """The geometries of a TopoJSON layer as ``{"id", "name", "polygons"}`` with each polygon a
    list of rings (``(n, 2)`` arrays of lon/lat degrees, shell first): the quantized,
    delta-encoded arcs decoded and joined (TopoJSON specification 2.1; a negative arc index
    ``~i`` is arc ``i`` reversed, and consecutive arcs share their joining point)."""
    import json

    topo = json.loads(Path(path).read_text(encoding="utf-8"))
    scale = np.asarray(topo["transform"]["scale"], float)
    shift = np.asarray(topo["transform"]["translate"], float)
    arcs = [np.cumsum(np.asarray(a, float), axis=0) * scale + shift for a in topo["arcs"]]

    def ring(indices: list[int]) -> np.ndarray:
        parts = [arcs[i] if i >= 0 else arcs[~i][::-1] for i in indices]
        return np.concatenate([parts[0]] + [q[1:] for q in parts[1:]])

    out = []
    for g in topo["objects"][layer]["geometries"]:
        if g.get("type") == "Polygon":
            polys = [g["arcs"]]
        elif g.get("type") == "MultiPolygon":
            polys = g["arcs"]
        else:
            continue
        out.append({"id": g.get("id"), "name": (g.get("properties") or {}).get("name"),
                    "polygons": [[ring(r) for r in poly] for poly in polys]})
    return out


def read_topojson(path: Path, resolution: str) -> gpd.GeoDataFrame:
    """One world-atlas file as a frame with ISO codes and valid polygonal geometry.

    Decoded here rather than by GDAL: GDAL joins the rings that cross the antimeridian
    straight across the map, which inverted Russia in two bands all round the globe, left Fiji
    slivers round the world and dropped Antarctica south of 84° S (issue 13)."""
    feats = decode_topojson(path)
    df = pd.DataFrame({"id": [f["id"] for f in feats], "name": [f["name"] for f in feats]})
    n3 = df["id"].astype("string")
    a3 = n3.map(ISO_NUMERIC_TO_ALPHA3)
    by_name = df["name"].map(NAME_FALLBACK).astype("string")
    a3 = by_name.fillna(a3)  # the name table wins: it also fixes shared ids (Ashmore -> ATC)
    if a3.isna().any():
        raise SystemExit(f"{path.name}: no alpha-3 code for {df.loc[a3.isna(), 'name'].tolist()}")
    geoms = np.array([shapely.union_all([antimeridian_polygon(rings) for rings in f["polygons"]]) for f in feats],
                     dtype=object)
    geom = polygonal(geoms)
    out = gpd.GeoDataFrame(
        {"iso_a3": a3, "iso_n3": n3, "name": df["name"].astype("string"), "resolution": resolution},
        geometry=gpd.GeoSeries(geom, crs="EPSG:4326"),
    )
    return out[out.geometry.notna()]


def build(src: Path, detail: tuple[str, ...] | None = None) -> gpd.GeoDataFrame:
    """Countries at 1:10m (all of them by default, or those of ``detail``), any others at 1:50m.

    The whole world at 1:10m costs 5.6 MB and makes every border (Portugal–Spain,
    USA–Canada, South Africa–Mozambique) as good as the Tien Shan ones; ``--detail
    central-asia`` builds the smaller mixed file of :data:`DETAIL_10M`.
    """
    fine = read_topojson(src / "countries-10m.json", "10m")
    coarse = read_topojson(src / "countries-50m.json", "50m")
    if detail is None:
        detail = tuple(sorted(set(fine.iso_a3.dropna())))
    fine = fine[fine.iso_a3.isin(detail)]
    missing = set(detail) - set(fine.iso_a3)
    if missing:
        raise SystemExit(f"1:10m file lacks {sorted(missing)}")
    coarse = coarse[~coarse.iso_a3.isin(detail)].copy()
    # clip coarse neighbours by the fine block so the two resolutions never overlap
    block = shapely.union_all(fine.geometry.values)
    hit = shapely.intersects(coarse.geometry.values, block)
    clipped = shapely.difference(coarse.geometry.values[hit], block)
    coarse.loc[hit, "geometry"] = polygonal(clipped)
    coarse = coarse[coarse.geometry.notna() & ~coarse.geometry.is_empty]
    out = pd.concat([fine, coarse], ignore_index=True)
    out = out.sort_values(["iso_a3", "name"], kind="stable").reset_index(drop=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")
    out["geometry"] = resolve_overlaps(out.geometry.values, out["iso_a3"].to_numpy())
    assert shapely.is_valid(out.geometry.values).all()
    return out


DISPUTED_OVERLAPS: tuple[tuple[str, str], ...] = ()
"""Pairs of entities allowed to overlap because Natural Earth maps a disputed area twice. In the
Natural Earth 4.1.0 Admin-0 countries none do: disputed areas are entities of their own
(``KAS`` Siachen Glacier, ``CYN`` N. Cyprus, ``SOL`` Somaliland, ...)."""


def resolve_overlaps(geoms: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Give any area two countries both claim to the smaller one (slivers left by the source's
    generalisation: in 4.1.0 only 0.014 km² of China overlapping Macau), except the pairs of
    :data:`DISPUTED_OVERLAPS`; printed for the record."""
    geoms = geoms.copy()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for a, b in zip(left, right):
        if a >= b or (codes[a], codes[b]) in DISPUTED_OVERLAPS or (codes[b], codes[a]) in DISPUTED_OVERLAPS:
            continue
        inter = shapely.intersection(geoms[a], geoms[b])
        if shapely.area(inter) <= 0:
            continue
        small, big = (a, b) if shapely.area(geoms[a]) < shapely.area(geoms[b]) else (b, a)
        print(f"overlap {codes[big]}/{codes[small]}: {shapely.area(inter):.2e} deg², given to {codes[small]}")
        geoms[big] = polygonal(np.array([shapely.difference(geoms[big], geoms[small])], dtype=object))[0]
    return geoms


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="folder with world-atlas countries-*.json")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output GeoParquet file")
    ap.add_argument("--detail", choices=["world", "central-asia"], default="world",
                    help="which countries get the 1:10m geometry (default: all)")
    args = ap.parse_args(argv)
    gdf = build(args.src, None if args.detail == "world" else DETAIL_10M)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    gdf.to_parquet(tmp, compression="zstd", index=False, write_covering_bbox=False)
    tmp.replace(args.out)
    n10 = int((gdf.resolution == "10m").sum())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): "
          f"{len(gdf)} features, {n10} at 1:10m")
    # the land borders between them, derived once here: deriving them costs ~4 s per process
    from telemetry.corridor.borders import BORDER_LINES_FILE, SNAP_DEG, _border_lines

    lines_out = args.out.with_name(BORDER_LINES_FILE)
    lines = _border_lines(gdf.set_crs("EPSG:4326", allow_override=True), SNAP_DEG)
    tmp = lines_out.with_suffix(".tmp")
    lines.to_parquet(tmp, compression="zstd", index=False, write_covering_bbox=False)
    tmp.replace(lines_out)
    print(f"wrote {lines_out} ({lines_out.stat().st_size / 1e6:.2f} MB): {len(lines)} country pairs")


if __name__ == "__main__":
    main()
