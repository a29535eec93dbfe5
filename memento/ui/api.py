"""The JSON API: the data of the pages, read-only, in the CLI's shapes (`summary` and `whole` of a case).

    GET /api/cases?q=&namespace=&min_reward=&max_reward=&where=k=v&failures=1&page=
    GET /api/cases/{id}            the whole case, and how often it was shown with what outcome
    GET /api/shown?q=&k=&namespace= the cases the agent would be shown, with the policy's scores
    GET /api/stats | /api/namespaces | /api/trash | /api/duplicates?threshold=
    GET /api/runs | /api/runs/{run} | /api/runs/{run}/episodes?arm=&phase=&page= | /api/runs/{run}/episodes/{n}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from memento.cli.cases import summary, whole
from memento.ui.queries import CaseQuery, parse_number, parse_page


def exposure_record(exposure: Any) -> dict[str, Any]:
    return {"times": exposure.times, "successes": exposure.successes, "mean_reward": exposure.mean_reward,
            "episodes": [c.id for c in exposure.shown_in]}


def run_record(name: str, run: Any) -> dict[str, Any]:
    """A line of the runs list: where the run stands and its arms."""
    if run is None:
        return {"name": name, "summary": False}
    return {"name": name, "summary": True, "protocol": run.protocol, "arms": run.arms, "iterations": run.iterations,
            "episodes": run.episodes, "expected_episodes": run.expected_episodes, "complete": run.complete,
            "errored_episodes": run.errored_episodes}


def episode_line(episode: Any) -> dict[str, Any]:
    """An episode without its trace: what the episodes table shows."""
    return {"number": episode.number, "superseded": episode.superseded,
            **{k: v for k, v in episode.record.items() if k != "trace"}}


def episode_filter(episodes: list, arm: str | None, phase: str | None) -> list:
    return [e for e in episodes if (not arm or e.get("arm") == arm) and (not phase or e.get("phase") == phase)]


def add_routes(app: FastAPI, context: Any) -> None:
    inspector, runs, size = context.inspector, context.runs, context.config.page_size

    @app.get("/api/cases")
    def cases(request: Request) -> dict[str, Any]:
        page = inspector.cases(CaseQuery.from_params(request.query_params))
        return {"page": page.page, "has_next": page.has_next, "total": page.total, "usefulness_note": page.usefulness_note,
                "cases": [{"similarity": r.similarity, "usefulness": r.usefulness, **summary(r.case)} for r in page.rows]}

    @app.get("/api/cases/{case_id:path}")
    def case(case_id: str) -> dict[str, Any]:
        return {**whole(inspector.case(case_id)), "exposure": exposure_record(inspector.exposure(case_id))}

    @app.get("/api/shown")
    def shown(q: str = "", k: str = "", namespace: str = "") -> dict[str, Any]:
        count = int(parse_number(k, "k") or inspector.k)
        preview = inspector.preview(q, namespace=namespace or None, k=count)
        return {"query": preview.query, "policy": preview.policy, "usefulness_note": preview.usefulness_note,
                "cases": [{"policy_score": r.score, "similarity": r.similarity, "usefulness": r.usefulness,
                           **summary(r.case)} for r in preview.rows]}

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        return inspector.bank.stats()

    @app.get("/api/namespaces")
    def namespaces() -> list[str]:
        return inspector.namespaces()

    @app.get("/api/trash")
    def trash() -> list[dict[str, Any]]:
        return [{"name": t.name, "reason": t.reason, "restored": t.restored, "cases": t.cases} for t in inspector.trash()]

    @app.get("/api/duplicates")
    def duplicates(threshold: str = "0.95", namespace: str = "") -> list[dict[str, Any]]:
        return [g.as_record() for g in inspector.duplicates(parse_number(threshold, "threshold"), namespace)]

    @app.get("/api/runs")
    def run_list() -> list[dict[str, Any]]:
        return [run_record(name, runs.summary(name)) for name in runs.names()]

    @app.get("/api/runs/{name:path}/episodes/{number:int}")
    def episode(name: str, number: int) -> dict[str, Any]:
        return {"number": number, "superseded": runs.episode(name, number).superseded,
                **runs.episode(name, number).record}

    @app.get("/api/runs/{name:path}/episodes")
    def episodes(name: str, arm: str = "", phase: str = "", page: str = "1") -> dict[str, Any]:
        chosen = episode_filter(runs.episodes(name), arm, phase)
        start = (parse_page(page) - 1) * size
        return {"total": len(chosen), "episodes": [episode_line(e) for e in chosen[start:start + size]]}

    @app.get("/api/runs/{name:path}")
    def run(name: str) -> dict[str, Any]:
        found = runs.summary(name)
        return {"name": name, "plots": runs.plots(name), "summary": found.model_dump(mode="json") if found else None}
