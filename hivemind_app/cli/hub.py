"""The hub (Redis shared by the hive's machines): `sync` (with `--status`, `--verify`, `--quarantined`) and
`conflicts`."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict

import click

from hivemind_app.cli.common import open_hive, print_json, stderr
from hivemind_app.display import one_line
from hivemind_app.errors import ConfigError
from hivemind_app.records.status import SyncState
from hivemind_app.timespec import humanise_age

QUARANTINE_ADVICE = """\
These records were read from Redis but not applied: something other than a hivemind-app node of this hive
wrote them, or they were damaged. Everything else kept syncing. To clear one:
  - look at it:  redis-cli HGETALL KEY   (a KEY#id name is an entry of that stream or hash)
  - if a node still holds a good copy, `hivemind-app sync --verify` there writes it again;
  - otherwise delete it:  redis-cli DEL KEY
  - a version "ahead of this node's clock": fix the clock (NTP) of the node that wrote it.
An entry leaves this list once a good record is read at its key."""


def register_commands(cli: click.Group) -> None:
    cli.add_command(sync)
    cli.add_command(conflicts)


@click.command()
@click.option("--status", "show_status", is_flag=True, help="Show the sync state instead of syncing.")
@click.option("--verify", is_flag=True, help="Also compare every memory (stamp and content) with Redis; repair drift.")
@click.option("--quarantined", is_flag=True, help="List the records from Redis that failed validation, and what to do.")
@click.option("--json", "as_json", is_flag=True)
def sync(show_status: bool, verify: bool, quarantined: bool, as_json: bool) -> None:
    """Push local writes to Redis and pull the other nodes' now (a running node does this continuously)."""
    with open_hive() as hive:
        report = None if show_status or quarantined else hive.sync(force=True)
        if not hive.hub_configured:
            raise ConfigError("No hub configured: set redis.url (hivemind-app config set redis.url redis://...).")
        verified = hive.verify_sync() if verify and report is not None and report.online else None
        data = hive.status().sync
    if quarantined:
        _show_quarantine(data, as_json)
        return
    if as_json:
        print_json(
            {
                **data.to_dict(),
                "pushed": report.pushed if report else None,
                "pulled": report.pulled if report else None,
                "verify": verified,
            }
        )
        return
    if report is not None:
        if report.online:
            click.echo(f"synced with {data.endpoint}: pushed {report.pushed}, pulled {report.pulled}")
            if report.reconciled:
                click.echo(f"reconciled this node's whole history with the hub: {report.reconciled}")
        else:
            stderr.print(f"offline: {report.error}", markup=False)
    if verified is not None:
        click.echo(
            f"verified {verified['local']} local / {verified['remote']} remote memories: "
            f"repaired {verified['to_push']} missing in Redis, {verified['to_pull']} missing here, "
            f"{verified['differ']} that differed at one version"
            + (
                f"; {verified['unreadable']} in Redis this node cannot read (hivemind-app sync --quarantined)"
                if verified.get("unreadable")
                else ""
            )
        )
    state = "online" if data.online else f"offline since {_ago(data.offline_since)}"
    if not data.tried:
        state = "not reached yet: run `hivemind-app sync`"
    click.echo(f"  hub:       {data.endpoint} ({state})")
    click.echo(f"  outbox:    {data.outbox} writes waiting")
    click.echo(f"  cursor:    {data.feed_cursor or '-'}")
    click.echo(f"  last push: {_ago(data.last_push)}")
    click.echo(f"  last pull: {_ago(data.last_pull)}")
    click.echo(f"  failures:  {data.failed_syncs} syncs, {data.failed_applies} applies")
    click.echo(f"  conflicts: {data.conflicts}")
    reconciled = f"reconciled {_ago(data.last_reconcile)}: {data.last_reconcile_reason}"
    click.echo(f"  epoch:     {data.hub_epoch or '-'} ({reconciled if data.last_reconcile else 'never reconciled'})")
    if data.quarantined:
        click.echo(f"  quarantined: {data.quarantined} records refused (hivemind-app sync --quarantined)")
    else:
        click.echo("  quarantined: 0")
    if data.last_error and not data.online:
        click.echo(f"  error:     {data.last_error}")
    if not data.online:
        sys.exit(69)


def _show_quarantine(data: SyncState, as_json: bool) -> None:
    if as_json:
        print_json({"quarantined": data.quarantined, "records": [asdict(r) for r in data.quarantine]})
        return
    if not data.quarantined:
        click.echo("nothing quarantined: every record read from Redis was valid")
        return
    shown = len(data.quarantine)
    more = f" (the {shown} most recent shown)" if shown < data.quarantined else ""
    click.echo(f"{data.quarantined} records from Redis quarantined{more}:")
    for record in data.quarantine:
        seen = f", refused {record.seen} times" if record.seen > 1 else ""
        # everything here was read from Redis, where anyone with write access put it: printed as visible escapes
        click.echo(f"  {one_line(record.key)}  ({_ago(record.quarantined_at)}{seen})")
        click.echo(f"    reason: {one_line(record.reason)}")
        click.echo(f"    value:  {one_line(record.raw[:160])}{'...' if len(record.raw) > 160 else ''}")
    click.echo(QUARANTINE_ADVICE)


def _ago(timestamp: float | None) -> str:
    return humanise_age(time.time() - timestamp) if timestamp else "never"


@click.command()
@click.argument("session_id", required=False)
@click.option(
    "--keep", type=click.Choice(["A", "B"]), help="A: the winning edit (already everywhere); B: the other one."
)
@click.option("--json", "as_json", is_flag=True)
def conflicts(session_id: str | None, keep: str | None, as_json: bool) -> None:
    """Sessions edited on two nodes while apart: both edits are kept until you choose one with --keep."""
    with open_hive() as hive:
        if keep is not None:
            if session_id is None:
                raise click.UsageError("Name the session to resolve: conflicts SESSION --keep A|B")
            hive.resolve_conflict(session_id, keep)
            click.echo(f"kept {'A (the winner)' if keep == 'A' else 'B (the other edit)'} for session {session_id}")
            return
        found = hive.conflicts()
    if session_id is not None:
        found = {k: v for k, v in found.items() if k == session_id}
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no conflicts")
        return
    for sid, record in found.items():
        click.echo(f"session {sid}:")
        for label, side in (("A", record["winner"]), ("B", record["loser"])):
            task = side["state"].get("current_task", "") if isinstance(side["state"], dict) else ""
            click.echo(f"  {label} from {side['node']}: current_task={task!r}")
        click.echo(f"  resolve with: hivemind-app conflicts {sid} --keep A   (or --keep B)")
