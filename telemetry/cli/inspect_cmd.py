"""``telemetry inspect``: what is in these collar files, and how good is it."""

from __future__ import annotations

import json

import click

from telemetry.cli.options import (
    calibration_option,
    config_options,
    input_options,
    load_calibration,
    read_inputs,
)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@input_options
@config_options
@calibration_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(paths: tuple[str, ...], tz, columns, format_, animal_id, species, config_path, overrides, calibration,
            as_json: bool) -> None:
    """Recognise each file's format and summarise it per file and per animal.

    Rows read, fixes, rows without a fix, time span (UTC), median fix interval,
    fix success against that interval, HDOP, 2D/3D share or Argos classes,
    duplicate timestamps. Accepts files, directories, .gz and .zip. The speed
    rules of the species profile are tried on each animal: one line per animal
    whose own movement contradicts the profile, naming the profile that fits.
    The location error (UERE per error class, with its 95 % interval and whether
    it was estimated, calibrated or a default) is the one `process` would use
    with the same --species, --config, --set and --calibration.
    """
    from telemetry.config import load_config
    from telemetry.pipeline import location_error
    from telemetry.trajectory.quality import summarize

    df = read_inputs(paths, tz, columns, format_, animal_id)
    summary = summarize(df)
    cfg = load_config(config_path, species=species, overrides=list(overrides))
    prior = load_calibration(calibration, cfg)
    check: dict = {}
    if len(df):
        summary["location_error"], tracks = location_error(df, cfg, error_model=prior)
        check = tracks.attrs.get("profile_check", {})
    summary["profile"] = {"species": cfg.species, "animals": check}
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        _print(summary)


def _fmt(x: object, suffix: str = "") -> str:
    return "–" if x is None else f"{x}{suffix}"


def _short(iso: str | None) -> str:
    """'2021-03-01T04:00:00Z' → '2021-03-01 04:00'."""
    return "–" if iso is None else iso[:16].replace("T", " ")


def _print(summary: dict) -> None:
    from rich.console import Console
    from rich.markup import escape as esc
    from rich.table import Table

    # (file names, notes and ids are text, not markup: "Longitude [deg]" printed as "Longitude ")
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 220  # piped output: never truncate cells
    for f in summary["files"]:
        console.print(f"[bold]{esc(f['source'])}[/bold]  format: [cyan]{f['format']}[/cyan]  "
                      f"rows read: {f['rows_read']}  kept: {f['rows_kept']}")
        for what, n in f["skipped"].items():
            console.print(f"  not kept: {n} {esc(str(what))}" + ("" if str(what).endswith("rows") else " rows"))
        if f.get("fix_type_rule"):
            console.print(f"  {esc(f['fix_type_rule'])}")
        for note in f["notes"]:
            console.print(f"  note: {esc(note)}")
        if not f["animals"]:
            continue
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("animal", "rows", "fixes", "no fix", "first (UTC)", "last (UTC)", "interval h",
                    "success %", "HDOP med/p90", "3D/2D %", "Argos LC", "dup t", "flags"):
            table.add_column(col, justify="left" if col in ("animal", "Argos LC", "flags") else "right",
                             no_wrap=True)
        for a in f["animals"]:
            dims = "–" if a["share_3d_pct"] is None else f"{a['share_3d_pct']:.0f}/{a['share_2d_pct']:.0f}"
            table.add_row(
                esc(str(a["animal_id"])), str(a["rows"]), str(a["fixes"]), str(a["no_fix_rows"]),
                _short(a["first"]), _short(a["last"]), _fmt(a["median_interval_h"]),
                _fmt(a["fix_success_pct"]), f"{_fmt(a['hdop_median'])}/{_fmt(a['hdop_p90'])}", dims,
                esc(" ".join(f"{k}:{v}" for k, v in a["argos_lc"].items())) or "–",
                str(a["duplicate_times"]),
                " ".join(f"{k}:{v}" for k, v in a["flags"].items()) or "–",
            )
        console.print(table)
        console.print()
    for s in summary["skipped_files"]:
        console.print(f"[yellow]skipped[/yellow] {esc(s['source'])}: {esc(s['reason'])}")
    profile = summary.get("profile") or {}
    misfits = [e["message"] for e in profile.get("animals", {}).values() if not e.get("fits", True)]
    for line in misfits:
        console.print(f"[yellow]profile[/yellow] {profile['species']}: {esc(line)}", soft_wrap=True)
    if profile.get("animals") and not misfits:
        console.print(f"profile {profile['species']}: the speeds of every animal fit")
    from telemetry.trajectory.diagnostics import report_lines

    for line in report_lines({"error_model": summary.get("location_error")}):
        console.print(line, markup=False, soft_wrap=True)
    t = summary["totals"]
    console.print(f"[bold]total[/bold]: {t['files']} files, {t['animals']} animals, {t['rows']} rows, "
                  f"{t['fixes']} fixes, {t['no_fix_rows']} rows without a fix")
