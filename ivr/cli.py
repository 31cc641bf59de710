"""The `ivr` command: flows, database migrations, the phone simulator and the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from ivr import create_app
from ivr.agent_commands import agents_group
from ivr.demo import demo_command
from ivr.simulator import call_command
from ivr.simulator.outbound import answer_command
from ivr.speech_commands import speech_group, transcribe_command
from ivr.standin import standin_command


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=True)
def main() -> None:
    """Phone support desk: manage flows and the database, place simulated calls."""


@main.group()
def flows() -> None:
    """Validate, publish, list and roll back call flows."""


@flows.command("schema")
def flows_schema() -> None:
    """Print the JSON Schema of the flow format (for editors)."""
    from routing.flow import flow_json_schema

    click.echo(json.dumps(flow_json_schema(), indent=2, ensure_ascii=False))


@flows.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def flows_validate(files: tuple[str, ...]) -> None:
    """Check flow files; print every problem as file:line:column: message."""
    from routing.loader import check_flow

    problems = 0
    for name in files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"{name}:1:1: cannot read the file: {exc}", err=True)
            problems += 1
            continue
        errors = check_flow(text, name)
        for error in errors:
            click.echo(str(error), err=True)
        problems += len(errors)
        if not errors:
            click.echo(f"{name}: ok")
    if problems:
        click.echo(f"{problems} problem(s) found", err=True)
        sys.exit(1)


@flows.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--by", default="cli", help="Who publishes (recorded in the history).")
@click.option("--if-new", is_flag=True, help="Only if no stored version holds this text yet: "
              "a publish or rollback made since (say, in the browser) stays live.")
@with_appcontext
def flows_publish(file: str, by: str, if_new: bool) -> None:
    """Validate FILE and make it the live version; an invalid flow changes nothing."""
    from sqlalchemy import select

    from callbacks.flowstore import FlowVersion, PublishedFlow, publish_flow, stored_copy
    from routing.errors import FlowInvalid

    text = Path(file).read_text(encoding="utf-8")
    with current_app.extensions["ivr.sessions"]() as session:
        try:
            stored = stored_copy(session, text, file) if if_new else None
            if stored is not None:
                live = session.get(PublishedFlow, stored.name)
                live_number = session.scalar(select(FlowVersion.number).where(
                    FlowVersion.id == live.version_id)) if live is not None else None
                click.echo(f"{file} is stored as {stored.name} version {stored.number} already; "
                           f"not published again (live: version {live_number or '-'})")
                return
            version = publish_flow(session, text, file, by=by)
            session.commit()  # the lookup above opened the transaction publish_flow joined
        except FlowInvalid as invalid:
            for error in invalid.errors:
                click.echo(str(error), err=True)
            click.echo("not published: the live version is unchanged", err=True)
            sys.exit(1)
    click.echo(f"published {version.name} version {version.number} (id {version.id})")


@flows.command("list")
@click.argument("name", required=False)
@with_appcontext
def flows_list(name: str | None) -> None:
    """List stored flow versions, newest first; * marks the live one."""
    from callbacks.flowstore import list_versions

    with current_app.extensions["ivr.sessions"]() as session:
        versions = list_versions(session, name)
    if not versions:
        click.echo("no flows yet: ivr flows publish flows/it-support.yaml")
    for v in versions:
        mark = "*" if v.published else " "
        click.echo(f"{mark} {v.name} v{v.number}  id={v.id}  {v.created_at:%Y-%m-%d %H:%M} UTC"
                   f"  {v.created_by or '-'}  {v.filename}")


@flows.command("rollback")
@click.argument("version", type=int)
@click.option("--flow", "name", default=None, help="Flow name (default: IVR_DEFAULT_FLOW).")
@click.option("--by", default="cli")
@with_appcontext
def flows_rollback(version: int, name: str | None, by: str) -> None:
    """Make an earlier VERSION (number from `ivr flows list`) live again."""
    from callbacks.flowstore import UnknownVersion, rollback_flow

    name = name or current_app.config["DEFAULT_FLOW"]
    with current_app.extensions["ivr.sessions"]() as session:
        try:
            chosen = rollback_flow(session, name, version, by=by)
        except UnknownVersion as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
    click.echo(f"{chosen.name} version {chosen.number} is live again")


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from ivr.schema import upgrade

    upgrade(current_app.config["DATABASE_URL"], revision)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--no-preload", is_flag=True, help="Do not load speech models at start.")
@with_appcontext
def worker(burst: bool, no_preload: bool) -> None:
    """Run an rq worker (with rq's scheduler) that loads the speech models once, up front."""
    from callbacks import runtime
    from callbacks.settings import Settings
    from callbacks.worker import preload_models, run_worker

    settings = Settings.from_config(current_app.config)
    if not settings.redis_url:
        raise click.ClickException("set REDIS_URL (or IVR_REDIS_URL) to the Redis to work from")
    runtime.configure(settings)
    runtime.delivery()  # a broken delivery file stops the worker here, with its problems
    if not no_preload:
        preload_models()
    run_worker(burst=burst)


@main.command("reconcile")
@with_appcontext
def reconcile_command() -> None:
    """Queue again any work whose job was lost, put back stuck callbacks and live callers,
    free stranded agents, then route free agents (workers also do this each minute)."""
    from callbacks.queues import redis_connection
    from callbacks.reconciler import reconcile

    policy = current_app.extensions["ivr.priorities"]
    with current_app.extensions["ivr.sessions"]() as session:
        report = reconcile(session, redis_connection(current_app.config["REDIS_URL"]),
                           wrap_up_seconds=int(current_app.config["WRAP_UP_SECONDS"]),
                           ring_seconds=policy.routing.ring_seconds, sweep=True)

    def listed(ids: list[int]) -> str:
        return ", ".join(str(i) for i in ids) if ids else "none"

    click.echo(f"checked {report.voicemails_checked} voicemail(s); queued again: voicemails "
               f"{listed(report.voicemails_requeued)}, ticket SMS {listed(report.sms_requeued)}")
    click.echo(f"callbacks put back: {listed(report.callbacks_put_back)}; agents freed: "
               f"{listed(report.agents_freed)}; wrap-ups ended: {listed(report.wrap_ups_ended)}")
    click.echo(f"live callers back in line: {listed(report.live_calls_put_back)}; rings "
               f"ended: {listed(report.live_offers_ended)}; callers lost: "
               f"{listed(report.live_calls_lost)}")
    click.echo(f"routed now: live callers {listed(report.live_calls_routed)}, callbacks "
               f"{listed(report.callbacks_routed)}")
    click.echo(f"deliveries queued again: {', '.join(report.deliveries_requeued) or 'none'}")


def _with_app(command: click.Command) -> click.Command:
    """Run `command` inside the app context, so it can read the app's settings."""
    assert command.callback is not None
    command.callback = with_appcontext(command.callback)
    return command


main.add_command(_with_app(call_command()))
main.add_command(answer_command())
main.add_command(_with_app(standin_command))
main.add_command(speech_group)
main.add_command(transcribe_command)
main.add_command(demo_command)
main.add_command(agents_group)
