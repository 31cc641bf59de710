"""A restart of `ivr demo` keeps what an admin published or rolled back: the demo's own start
step (migrate, publish the flow file) run again and again against one database."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from callbacks.flowstore import FlowVersion, PublishedFlow, publish_flow, rollback_flow
from ivr.demo import demo_environment, flow_number, ivr_command, prepare_database
from tests.conftest import DEMO_FLOW
from tests.test_console_browser import always_open


def test_a_restart_of_the_demo_keeps_an_admins_publish_and_rollback(app: Flask, redis_url: str,
                                                                    tmp_path: Path) -> None:
    flow_file = tmp_path / "it-support.yaml"
    flow_file.write_text(DEMO_FLOW.read_text(encoding="utf-8"), encoding="utf-8")
    env = demo_environment({**os.environ, "IVR_DATABASE_URL": app.config["DATABASE_URL"],
                            "IVR_REDIS_URL": redis_url}, 5000, tmp_path / "instance",
                           flow_number(flow_file))

    def start_demo() -> None:
        prepare_database(ivr_command(), env, str(flow_file))

    def live() -> int:
        """The number of the version that answers calls."""
        with app.extensions["ivr.sessions"]() as session:
            published = session.get(PublishedFlow, "it-support")
            assert published is not None
            version = session.get(FlowVersion, published.version_id)
            assert version is not None
            return version.number

    def admin_publishes(text: str) -> int:
        with app.extensions["ivr.sessions"]() as session:
            version = publish_flow(session, text, "it-support.yaml", by="rita")
            session.commit()
            return version.number

    start_demo()
    first = live()
    edited = admin_publishes(always_open(flow_file.read_text(encoding="utf-8")))
    start_demo()
    assert live() == edited, "a restart published the file over the admin's publish"
    again = admin_publishes(always_open(flow_file.read_text(encoding="utf-8")) + "# again\n")
    assert live() == again
    with app.extensions["ivr.sessions"]() as session:  # ... the admin rolls back one
        rollback_flow(session, "it-support", edited, by="rita")
        session.commit()
    start_demo()
    assert live() == edited, "a restart undid the admin's rollback"
    with app.extensions["ivr.sessions"]() as session:  # ... and back to the file's version
        rollback_flow(session, "it-support", first, by="rita")
        session.commit()
    start_demo()
    assert live() == first
    flow_file.write_text(DEMO_FLOW.read_text(encoding="utf-8") + "# edited on disk\n",
                         encoding="utf-8")
    start_demo()
    assert live() not in {first, edited, again}, "an edited file was not published"
