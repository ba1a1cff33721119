"""``telemetry calibrate``: the collars' location error from fixes of collars left at one place."""

from __future__ import annotations

import click

from telemetry.cli.options import config_options, input_options, largest_uere_m


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "-o", "out_path", default="calibration.csv", show_default=True, type=click.Path(dir_okay=False),
              help="Calibration table to write (CSV), for `process`/`run --calibration`.")
@click.option("--by", default="animal_id", show_default=True,
              help="Column naming the stationary collar (or test site) of each fix.")
@click.option("--min-fixes", default=10, show_default=True, type=click.IntRange(min=2),
              help="Fewest fixes of an error class (3D, 2D, Argos class ...) to calibrate it.")
@input_options
@config_options
def calibrate(inputs, out_path, by, min_fixes, tz, columns, format_, animal_id, species, config_path,
              overrides) -> None:
    """UERE per error class from stationary test fixes (Fleming et al. 2020).

    Each collar (--by) is taken to have stayed at one unknown place; the UERE of each class
    (3D, 2D, unknown GPS, each Argos location class) is its maximum-likelihood estimate with a
    95 % interval. Flagged rows and rows without a position are skipped. A class
    whose UERE comes out above smooth.error_max_factor times its default (the
    largest error the smoother believes a GPS collar makes) is refused, naming the
    collars that moved (exit 2; --set smooth.error_max_factor=... to accept it).
    """
    from telemetry.cli.options import read_inputs
    from telemetry.config import load_config
    from telemetry.io.atomic import atomic_write
    from telemetry.trajectory.clean import clean
    from telemetry.trajectory.error_model import calibrate as fit

    cfg = load_config(config_path, species=species, overrides=list(overrides))
    fixes = read_inputs(inputs, tz, columns, format_, animal_id)
    model = fit(clean(fixes, cfg.clean), by=by, min_fixes=min_fixes, most_m=largest_uere_m(cfg))
    atomic_write(out_path, lambda tmp: model.to_frame().to_csv(tmp, index=False))
    click.echo(model.note)
    for cls, v in model.to_dict().items():
        if cls != "note":
            click.echo(f"  {cls:<9} UERE {v['uere_m']:g} m (95 % {v['ci_low_m']:g}-{v['ci_high_m']:g}), "
                       f"{v['n_fixes']} fixes")
    click.echo(f"wrote {out_path}")
