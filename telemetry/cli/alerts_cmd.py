"""``telemetry alerts``: what the field team must know this morning, from collar files or a store."""

from __future__ import annotations

import click

from telemetry.cli.options import config_options, read_inputs


@click.command("alerts")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--tz", default=None, metavar="ZONE", help="IANA zone of local-time-only files (e.g. Asia/Almaty).")
@click.option("--columns", default=None, metavar="MAP", help="Generic CSV mapping, e.g. time=DateTime,lon=X,lat=Y.")
@click.option("--parser", "format_", default=None, metavar="NAME",
              help="Force a parser instead of detecting (see `telemetry formats`; --format is the output here).")
@click.option("--animal-id", default=None, help="Animal id for files that name none.")
@config_options
@click.option("--since", default=None, metavar="TIME", help="Only alerts seen at or after this time (UTC).")
@click.option("--now", default=None, metavar="TIME",
              help="Time of the check (UTC; default: the latest row of any collar, i.e. the download).")
@click.option("--zones", default=None, type=click.Path(dir_okay=False),
              help="Protected areas (polygons): exits and entries are alerted.")
@click.option("--zone-field", default=None, help="Name column of --zones.")
@click.option("--border-km", type=float, default=None,
              help="Border approach distance (km; = --set alerts.border_km=…; default 5).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True,
              help="Format on stdout.")
@click.option("--html", "html_out", default=None, type=click.Path(dir_okay=False),
              help="Also write an offline page with a map per alert (e.g. alerts.html).")
@click.option("--smtp", default=None, metavar="HOST[:PORT]", help="Send the alerts through this SMTP server.")
@click.option("--mail-to", multiple=True, metavar="ADDRESS", help="Recipient of the e-mail (repeatable).")
@click.option("--mail-from", default="telemetry@localhost", show_default=True, help="Sender of the e-mail.")
def alerts(paths: tuple[str, ...], tz, columns, format_, animal_id, since, now, zones, zone_field, border_km, fmt,
           html_out, smtp, mail_to, mail_from, species=None, config_path=None, overrides=()) -> None:
    """Mortality, kill sites, border approaches and crossings, zone exits, collar health of PATHS
    (collar files or a store written by `telemetry process --out DIR/` or `telemetry update`)."""
    import pandas as pd

    from telemetry.config import load_config
    from telemetry.corridor.alerts import alerts as find_alerts
    from telemetry.errors import TelemetryError
    from telemetry.outputs.alerts_page import format_alerts, send_alerts, write_alerts_page
    from telemetry.pipeline import process

    cfg = load_config(config_path, species=species, overrides=overrides).with_given({"alerts": {"border_km": border_km}})
    if smtp and not mail_to:
        raise TelemetryError("--smtp needs at least one --mail-to")
    for name, value in (("--since", since), ("--now", now)):
        if value is not None:
            try:
                pd.Timestamp(value)
            except ValueError:
                raise TelemetryError(f"{name}: not a time: {value!r} (e.g. 2024-05-01 or 2024-05-01T06:00Z)") from None
    zone_layer = None
    if zones:
        from telemetry.corridor.zones import load_zones

        zone_layer = load_zones(zones, zone_field)
    tracks = process(read_inputs(paths, tz, columns, format_, animal_id), cfg)
    table = find_alerts(tracks, cfg.alerts, since=since, now=now, zones=zone_layer, zone_field=zone_field)
    click.echo(format_alerts(table, fmt), nl=False)
    if html_out:
        write_alerts_page(html_out, table, tracks)
    if smtp:
        n = send_alerts(table, smtp=smtp, to=list(mail_to), sender=mail_from)
        click.echo(f"sent {n} alerts to {', '.join(mail_to)} via {smtp}", err=True)
