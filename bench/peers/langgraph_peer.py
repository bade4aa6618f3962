"""LangGraph with its SQLite checkpointer, measured like Signoff (run in its own venv).

A graph whose node asks ``interrupt()`` for a two-field answer, validates it, and marks
the next line. Each waiting run is a thread id; resuming is ``invoke(Command(resume=...))``.

Usage: python langgraph_peer.py SCENARIO DB_PATH   (SCENARIO: cold, warm, burst)
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path
from typing import TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ANSWER, Approval, emit, latencies, resume_all
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

MARKS: dict[str, float] = {}


class State(TypedDict):
    tag: str


def ask(state: State) -> State:
    answer = Approval.model_validate(interrupt({"schema": Approval.model_json_schema()}))
    MARKS[state["tag"]] = time.time()
    assert answer.approved
    return state


def build(path: str):
    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    return graph.compile(checkpointer=saver)


def config(tag: str) -> dict[str, object]:
    return {"configurable": {"thread_id": tag}}


def start(app, tags: list[str]) -> None:
    for tag in tags:
        app.invoke({"tag": tag}, config(tag))


def resume(app, tag: str) -> None:
    app.invoke(Command(resume=ANSWER), config(tag))


def main() -> None:
    scenario, path = sys.argv[1], sys.argv[2]
    app = build(path)
    if scenario == "cold":
        tag = f"cold-{time.time_ns()}"
        start(app, [tag])
        began = time.time()
        resume(app, tag)
        emit({"latencies": [MARKS[tag] - began]})
    elif scenario == "warm":
        out = []
        for i in range(50):
            tag = f"warm-{i}"
            start(app, [tag])
            began = time.time()
            resume(app, tag)
            out.append(MARKS[tag] - began)
        emit({"latencies": out})
    elif scenario == "burst":
        tags = [f"burst-{i}" for i in range(100)]
        start(app, tags)
        starts = resume_all(tags, lambda tag: resume(app, tag))
        emit({"latencies": latencies(starts, MARKS)})
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main()
