"""Flow versions: atomic publish, invalid flows refused, rollback, per-version compiled cache."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from sqlalchemy import func, select

from callbacks.flowstore import (
    FlowPublication,
    FlowVersion,
    UnknownVersion,
    compiled_version,
    list_versions,
    publish_flow,
    published_version_for_number,
    rollback_flow,
)
from routing.errors import FlowInvalid
from tests.conftest import DEMO_FLOW
from tests.test_voice import FLOW


def sessions(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["ivr.sessions"]()


def test_publish_list_and_rollback(app: Flask) -> None:
    with sessions(app) as session:
        v1 = publish_flow(session, FLOW, "flows/test.yaml", by="alice")
        v2 = publish_flow(session, FLOW.replace("Hello", "Hi there"), "flows/test.yaml", by="bob")
        assert (v1.number, v2.number) == (1, 2)
        assert published_version_for_number(session, "+493012345678", None) == v2.id
        listed = list_versions(session)
        assert [(v.number, v.published, v.created_by) for v in listed] == [
            (2, True, "bob"), (1, False, "alice")]

        back = rollback_flow(session, "test-line", 1, by="carol")
        assert back.id == v1.id
        assert published_version_for_number(session, "+493012345678", None) == v1.id
        history = session.execute(
            select(FlowPublication.action, FlowPublication.version_id, FlowPublication.by)
            .order_by(FlowPublication.id)).all()
        assert history == [("publish", v1.id, "alice"), ("publish", v2.id, "bob"),
                           ("rollback", v1.id, "carol")]
        with pytest.raises(UnknownVersion):
            rollback_flow(session, "test-line", 9)


def test_an_invalid_flow_never_replaces_the_published_one(app: Flask) -> None:
    with sessions(app) as session:
        good = publish_flow(session, FLOW, "flows/test.yaml")
        broken = FLOW.replace("on_no_answer: vm", "on_no_answer: vmm")
        with pytest.raises(FlowInvalid) as raised:
            publish_flow(session, broken, "flows/test.yaml")
        assert "unknown node 'vmm'" in str(raised.value)
        assert "did you mean 'vm'" in str(raised.value)
        assert session.scalar(select(func.count()).select_from(FlowVersion)) == 1
        assert published_version_for_number(session, "+493012345678", None) == good.id


def test_publishing_the_same_source_again_adds_no_version(app: Flask) -> None:
    with sessions(app) as session:
        first = publish_flow(session, FLOW, "a.yaml")
        publish_flow(session, FLOW.replace("Hello", "Hi"), "a.yaml")
        again = publish_flow(session, FLOW, "a.yaml")
        assert again.id == first.id
        assert session.scalar(select(func.count()).select_from(FlowVersion)) == 2
        assert published_version_for_number(session, "", "test-line") == first.id


def test_the_flow_is_chosen_by_the_number_called(app: Flask) -> None:
    demo_text = DEMO_FLOW.read_text(encoding="utf-8")
    with sessions(app) as session:
        test_line = publish_flow(session, FLOW, "test.yaml")
        demo = publish_flow(session, demo_text, str(DEMO_FLOW))
        assert published_version_for_number(session, "+493012345678", None) in (
            test_line.id, demo.id)
        assert published_version_for_number(session, "+10000000000", "it-support") == demo.id
        assert published_version_for_number(session, "+10000000000", None) is None


def test_concurrent_publishes_get_distinct_numbers(app: Flask) -> None:
    errors: list[BaseException] = []

    def publish(i: int) -> None:
        try:
            with sessions(app) as session:
                publish_flow(session, FLOW.replace("Hello", f"Hello {i}"), "c.yaml")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions(app) as session:
        numbers = sorted(session.scalars(select(FlowVersion.number)))
    assert numbers == [1, 2, 3, 4, 5, 6]


def test_compiled_versions_are_cached_per_version(app: Flask) -> None:
    with sessions(app) as session:
        version = publish_flow(session, FLOW, "test.yaml")
        first = compiled_version(session, version.id)
        assert compiled_version(session, version.id) is first
        assert first.flow.name == "test-line"
        with pytest.raises(UnknownVersion):
            compiled_version(session, 999)
