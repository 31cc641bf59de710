"""Checks a schema cannot make: targets, reachability, loops, languages, numbers and hours."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from routing.calendar_checks import check_calendars, check_rotas
from routing.callback_choices import callback_calendar, offers_windows
from routing.callback_texts import BUILT_IN, needed_texts, placeholder_problem
from routing.errors import FlowError, Path
from routing.field_problems import check_number, did_you_mean
from routing.flow import WAITING_TYPES, CallbackNode, Flow, QueueNode, TicketNode
from routing.graph import loops
from routing.incident_checks import check_menu_incidents
from routing.node_texts import check_node_texts
from routing.queue_checks import check_queue
from routing.ticket_texts import BUILT_IN as TICKET_BUILT_IN
from routing.ticket_texts import placeholder_problem as ticket_placeholder_problem

Locate = Callable[[Path], tuple[int, int]]

TARGET_FIELDS = ("next", "on_failure", "open", "closed", "holiday", "on_no_answer")
QUEUE_TARGET_FIELDS = ("callback", "voicemail", "overflow")
"""A queue node's ways out ('callback' is a flag, not a target, on voicemail nodes)."""
PROMPT_FIELDS = ("text", "prompt", "invalid", "no_input")


def semantic_errors(
    flow: Flow,
    filename: str,
    locate: Locate,
    locate_key: Locate | None = None,
) -> list[FlowError]:
    """Every problem a schema cannot see, located via `locate(path)`, sorted in file order."""
    checks = _Checks(flow, filename, locate, locate_key or locate)
    checks.run()
    return sorted(set(checks.errors))


class _Checks:
    """One pass over a flow that collects located errors."""

    def __init__(self, flow: Flow, filename: str, locate: Locate, locate_key: Locate) -> None:
        self.flow = flow
        self.filename = filename
        self.locate = locate
        self.locate_key = locate_key
        self.errors: list[FlowError] = []
        self.reference_errors = 0

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        line, column = (self.locate_key if at_key else self.locate)(path)
        self.errors.append(FlowError(self.filename, line, column, message))

    def run(self) -> None:
        self.check_targets()
        self.reference_errors = len(self.errors)
        self.check_reachable()
        self.check_waiting_loops()
        self.check_languages()
        self.check_phone_numbers()
        self.check_transfers()
        check_calendars(self)
        check_rotas(self)
        self.check_menu_keywords()
        check_menu_incidents(self)
        for node_id, node in self.flow.nodes.items():
            if isinstance(node, CallbackNode):
                self.check_callback(node_id, node)
            elif isinstance(node, QueueNode):
                check_queue(self, node_id, node)
            elif isinstance(node, TicketNode):
                self.check_ticket(node_id, node)

    # --- graph ---------------------------------------------------------------

    def edges(self, node_id: str) -> Iterator[tuple[Path, str, str]]:
        """(path of the target value, field label, target) for each way out of a node."""
        node = self.flow.nodes[node_id]
        if node.type == "menu":
            for key, option in node.options.items():
                yield ("nodes", node_id, "options", key, "next"), f"option '{key}'", option.next
        fields = QUEUE_TARGET_FIELDS if node.type == "queue" else TARGET_FIELDS
        for field in fields:
            target = getattr(node, field, None)
            if target is not None:
                yield ("nodes", node_id, field), field, target

    def successors(self, node_id: str) -> list[str]:
        return [t for _, _, t in self.edges(node_id) if t in self.flow.nodes]

    def check_targets(self) -> None:
        nodes = self.flow.nodes
        if self.flow.start not in nodes:
            hint = did_you_mean(self.flow.start, nodes)
            self.error(("start",), f"'start' goes to unknown node '{self.flow.start}'{hint}")
        for node_id, node in nodes.items():
            for path, label, target in self.edges(node_id):
                if target not in nodes:
                    self.error(
                        path,
                        f"{node.type} '{node_id}' {label} goes to unknown node '{target}'"
                        f"{did_you_mean(target, nodes)}",
                    )

    def check_reachable(self) -> None:
        """Nodes no path from 'start' reaches, reported only once every reference resolves:
        one misspelt node name would otherwise bury its own error under every node it cuts
        off."""
        if self.reference_errors:
            return
        seen = {self.flow.start}
        pending = [self.flow.start]
        while pending:
            for target in self.successors(pending.pop()):
                if target not in seen:
                    seen.add(target)
                    pending.append(target)
        for node_id in self.flow.nodes:
            if node_id not in seen:
                self.error(
                    ("nodes", node_id),
                    f"node '{node_id}' is never reached from 'start'",
                    at_key=True,
                )

    def check_waiting_loops(self) -> None:
        # A queue node waits, except that with nobody signed in it overflows at once.
        nodes = self.flow.nodes
        busy = [n for n, node in nodes.items()
                if node.type not in WAITING_TYPES or node.type == "queue"]
        busy_set = set(busy)

        def onward(n: str) -> list[str]:
            node = nodes[n]
            targets = [node.overflow] if node.type == "queue" else self.successors(n)
            return [t for t in targets if t in busy_set]

        graph = {n: onward(n) for n in busy}
        for cycle in loops(busy, graph):
            chain = " -> ".join(f"'{n}'" for n in [*cycle, cycle[0]])
            self.error(
                ("nodes", cycle[0]),
                f"nodes {chain} loop without waiting for the caller",
                at_key=True,
            )

    # --- languages -----------------------------------------------------------

    def check_languages(self) -> None:
        flow = self.flow
        declared = flow.languages
        if flow.default_language not in declared:
            self.error(
                ("default_language",),
                f"default_language '{flow.default_language}' is not one of the declared "
                f"languages: {', '.join(declared)}",
            )
        for index, language in enumerate(declared):
            if language in declared[:index]:
                self.error(("languages", index), f"language '{language}' is listed twice")
        for language in flow.voices:
            if language not in declared:
                self.error(
                    ("voices", language),
                    f"voice '{language}' is for a language 'languages' does not declare",
                    at_key=True,
                )
        for node_id, node in flow.nodes.items():
            required: Iterable[str] = declared
            if node.type == "language":
                required = dict.fromkeys(node.options.values())
                for key, language in node.options.items():
                    if language not in declared:
                        self.error(
                            ("nodes", node_id, "options", key),
                            f"language '{node_id}' option '{key}' offers '{language}', "
                            "which 'languages' does not declare",
                        )
            for field in PROMPT_FIELDS:
                prompt = getattr(node, field, None)
                if isinstance(prompt, dict):
                    self.check_prompt(node_id, field, prompt, required)
            if node.type == "menu":
                for key, option in node.options.items():
                    for language in option.keywords:
                        if language not in declared:
                            self.error(
                                ("nodes", node_id, "options", key, "keywords", language),
                                f"menu '{node_id}' option '{key}' has keywords for "
                                f"'{language}', which 'languages' does not declare",
                                at_key=True,
                            )

    def check_prompt(
        self, node_id: str, field: str, prompt: dict[str, str], required: Iterable[str]
    ) -> None:
        path: Path = ("nodes", node_id, field)
        for language in required:
            if language not in prompt:
                self.error(path, f"node '{node_id}' {field} has no '{language}' text")
        for language in prompt:
            if language not in self.flow.languages:
                self.error(
                    (*path, language),
                    f"node '{node_id}' {field} has text for '{language}', "
                    "which 'languages' does not declare",
                    at_key=True,
                )

    # --- phone numbers -------------------------------------------------------

    def check_phone_numbers(self) -> None:
        for index, number in enumerate(self.flow.numbers):
            self.check_number(("numbers", index), "numbers", number)
        for group, numbers in self.flow.groups.items():
            if not numbers:
                self.error(("groups", group), f"group '{group}' has no numbers")
            for index, number in enumerate(numbers):
                self.check_number(("groups", group, index), f"group '{group}'", number)
        for node_id, node in self.flow.nodes.items():
            if node.type == "transfer" and node.to is not None:
                self.check_number(("nodes", node_id, "to"), f"transfer '{node_id}' to", node.to)

    def check_number(self, path: Path, where: str, number: str) -> None:
        check_number(self, path, where, number)

    def check_transfers(self) -> None:
        for node_id, node in self.flow.nodes.items():
            if node.type != "transfer":
                continue
            if node.to is not None and node.group is not None:
                self.error(
                    ("nodes", node_id),
                    f"transfer '{node_id}' has both 'to' and 'group'; keep one",
                    at_key=True,
                )
            elif node.to is None and node.group is None:
                self.error(
                    ("nodes", node_id),
                    f"transfer '{node_id}' needs 'to' (an E.164 number) or 'group' "
                    "(a name under 'groups')",
                    at_key=True,
                )
            if node.group is not None and node.group not in self.flow.groups:
                self.error(
                    ("nodes", node_id, "group"),
                    f"transfer '{node_id}' group '{node.group}' is not under 'groups'"
                    f"{did_you_mean(node.group, self.flow.groups)}",
                )


    # --- menus ---------------------------------------------------------------

    def check_menu_keywords(self) -> None:
        for node_id, node in self.flow.nodes.items():
            if node.type != "menu":
                continue
            owner: dict[tuple[str, str], str] = {}
            for key, option in node.options.items():
                for language, words in option.keywords.items():
                    for index, word in enumerate(words):
                        normal = " ".join(word.casefold().split())
                        first = owner.setdefault((language, normal), key)
                        if first != key:
                            self.error(
                                ("nodes", node_id, "options", key, "keywords", language, index),
                                f"menu '{node_id}' keyword '{word}' ({language}) is used by "
                                f"options '{first}' and '{key}'; a keyword may pick one option",
                            )


    # --- callbacks -------------------------------------------------------------

    def check_callback(self, node_id: str, node: CallbackNode) -> None:
        flow = self.flow
        base: Path = ("nodes", node_id)
        if node.calendar is not None and node.calendar not in flow.calendars:
            self.error(
                (*base, "calendar"),
                f"callback '{node_id}' calendar '{node.calendar}' is not under 'calendars'"
                f"{did_you_mean(node.calendar, flow.calendars)}",
            )
        elif node.windows and callback_calendar(flow, node) is None and (
            flow.calendars or "windows" in node.model_fields_set
        ):
            known = ", ".join(flow.calendars) or "none"
            self.error(
                (*base, "windows") if "windows" in node.model_fields_set else base,
                f"callback '{node_id}' offers windows but does not say which calendar they "
                f"count in; add 'calendar:' (calendars: {known}) or set 'windows: false'",
                at_key="windows" not in node.model_fields_set,
            )
        check_node_texts(self, "callback", node_id, node,
                         needed_texts(node, offers_windows(flow, node)), BUILT_IN,
                         placeholder_problem)

    # --- ticket nodes (repeat callers) ---------------------------------------------

    def check_ticket(self, node_id: str, node: TicketNode) -> None:
        check_node_texts(self, "ticket", node_id, node, TICKET_BUILT_IN, TICKET_BUILT_IN,
                         ticket_placeholder_problem)
        if node.on_failure == node_id or node.next == node_id:
            field = "on_failure" if node.on_failure == node_id else "next"
            self.error(("nodes", node_id, field), f"ticket '{node_id}' {field} goes back to "
                       "itself; send the caller on, for example to the main menu")
