"""``telemetry run``: the whole job on the given files, or on the bundled sample."""

from __future__ import annotations

import click

from telemetry.cli.options import (
    calibration_option,
    config_options,
    engine_options,
    input_options,
    lang_option,
    load_calibration,
    make_engine,
    read_deployments,
    with_lang,
)


@click.command()
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--out", "-o", "out_dir", default="maps", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the outputs (replaced as a whole when the run completes).")
@config_options
@click.option("--quiet", "-q", is_flag=True, help="No progress display and no summary table.")
@calibration_option
@lang_option
@click.option("--zones", default=None, type=click.Path(dir_okay=False),
              help="Protected areas (any polygon file): each home range's share of each, and which are smaller "
                   "than the median home range (range_share.csv, zone_sizes.csv).")
@click.option("--zone-field", default=None, help="Name column of --zones.")
@click.option("--deployments", type=click.Path(dir_okay=False), default=None,
              help="CSV with animal_id,start,end (or Movebank reference data): fixes outside are flagged. "
                   "Movebank reference data among the INPUT files is used without it.")
@input_options
@engine_options
def run(inputs, out_dir, config_path, species, overrides, quiet, calibration, lang, zones, zone_field, deployments,
        tz, columns, format_, animal_id, engine, scheduler, n_workers) -> None:
    """Read → clean → segment → smooth → crossings → hotspots → corridors → map → exports.

    With no INPUT, runs on the bundled synthetic sample (sample_tracks/) and
    writes into maps/. INPUT may also be a GeoParquet dataset folder (`telemetry
    process ... --out DIR/`). With --engine dask (or --scheduler ADDRESS) the
    per-animal steps run on a Dask cluster; the outputs are the same.
    """
    from rich.console import Console

    from telemetry.config import load_config
    from telemetry.outputs.runfolder import check_writable
    from telemetry.pipeline import run as run_job

    # fail early, before any reading or computing: the output folder and every parameter
    check_writable(out_dir)
    overrides = with_lang(overrides, lang)
    error_model = load_calibration(calibration, load_config(config_path, species=species, overrides=overrides))
    zone_layer = None
    if zones:
        from telemetry.corridor.zones import load_zones

        zone_layer = load_zones(zones, zone_field)  # a bad file fails here, before any work
    dep = read_deployments(deployments)  # ... and so does a bad deployment table
    compute = make_engine(engine, scheduler, n_workers)

    if any(v is not None for v in (tz, columns, format_, animal_id)):
        # reading options apply to the inputs: read here, hand the table on
        from telemetry.cli.options import read_inputs

        if not inputs:
            raise click.UsageError("reading options need INPUT files")
        inputs_or_table = read_inputs(inputs, tz, columns, format_, animal_id)
    else:
        inputs_or_table = None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from telemetry.pipeline import RUN_STEPS

    console = Console(stderr=True, quiet=quiet)
    columns_ = (TextColumn("{task.description:<42}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn())
    with compute, Progress(*columns_, console=console, transient=False, disable=quiet) as progress:
        task = progress.add_task("starting", total=len(RUN_STEPS))
        cold = not kernels_cached()
        if cold:
            console.print("compiling the numerical kernels (first run only: a few minutes on 2 cores; "
                          "later runs reuse them)")

        def step(name: str) -> None:
            # a step outside RUN_STEPS (e.g. "process on the cluster") keeps the bar where it is
            done = RUN_STEPS.index(name) if name in RUN_STEPS else None
            label = f"{name} (compiling, first run only)" if cold and name in COMPILING_STEPS else name
            progress.update(task, description=label, completed=done)

        result = run_job(inputs or None, out_dir, config_path, species=species, overrides=overrides,
                         step=step, fixes=inputs_or_table, engine=compute, error_model=error_model,
                         zones=zone_layer, deployments=dep)
        progress.update(task, description="done", completed=len(RUN_STEPS))
    if not quiet:
        _print_summary(result)


COMPILING_STEPS = {"clean", "clusters", "smooth", "states", "home ranges", "corridors"}
"""Steps whose numba kernels are compiled on their first use (the long waits of a first run)."""


def kernels_cached() -> bool:
    """True if numba's on-disk cache holds the trajectory kernels for the current sources (the
    shipped ones, seeded when ``telemetry.trajectory`` is imported, or an earlier run's)."""
    import telemetry.trajectory  # noqa: F401 - seeds numba's cache (telemetry.kernel_cache)
    from telemetry.kernel_cache import has_fresh_kernels

    return has_fresh_kernels("trajectory/states.py")


def _print_summary(result) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 200
    table = Table(box=None, header_style="bold")
    cols = ["rows", "usable", "flagged", "segments", "clusters", "days", "distance_km"]
    table.add_column("animal")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for animal, row in result.summary.iterrows():
        table.add_row(escape(str(animal)), *[_cell(row.get(c)) for c in cols])  # (an id is text, not markup)
    console.print(table)
    for line in result.quality.get("processing", {}).get("notes", []):
        console.print(line, markup=False, soft_wrap=True)
    for s in result.quality.get("skipped_files", []):
        console.print(f"skipped {s['source']}: {s['reason']}", markup=False, soft_wrap=True)
    for path in result.outputs:
        console.print(f"wrote {path}", markup=False)


def _cell(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return "–" if x != x else f"{x:,.1f}"
    return f"{x:,}" if isinstance(x, int) else str(x)
