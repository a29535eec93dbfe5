"""The HTML pages: cases, a case, edit, trash, duplicates, runs, a run, an episode's trace.

A POST (an edit, a delete, a restore, a merge) checks the form's CSRF token, makes its one
library call and redirects to the page that shows the result; a MementoError re-renders the form
with the library's message and changes nothing (the library's calls are all or nothing).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from memento.case import Case
from memento.errors import MementoError
from memento.ui.api import episode_filter
from memento.ui.app import SECURITY_HEADERS, Context, error_status, path_part, pretty_json
from memento.ui.queries import CaseQuery, parse_number, parse_page
from memento.ui.security import CSRF_FIELD, check_csrf

DEFAULT_THRESHOLD = 0.95


def edit_values(case: Case) -> dict[str, str]:
    """The edit form's fields for a case, as text."""
    data = case.model_dump(mode="json")
    return {"task": case.task, "answer": case.answer, "reward": f"{case.reward:g}", "namespace": "/".join(case.namespace),
            "plan": "\n".join(case.plan), "metadata": pretty_json(data["metadata"]),
            "trajectory": pretty_json(data["trajectory"]),
            "procedure": "" if data["procedure"] is None else pretty_json(data["procedure"])}


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


async def submitted(request: Request, context: Context) -> dict[str, str]:
    """The form's fields, once its CSRF token is checked (a Refusal otherwise)."""
    form = await request.form()
    check_csrf(form, context.csrf)
    return {key: value for key, value in form.items() if key != CSRF_FIELD and isinstance(value, str)}


def add_routes(app: FastAPI, context: Context) -> None:
    inspector, runs = context.inspector, context.runs

    @app.get("/")
    def home() -> Response:
        return see_other("/cases")

    # -- cases ----------------------------------------------------------------------------------

    @app.get("/cases")
    def cases(request: Request) -> Response:
        query = CaseQuery.from_params(request.query_params)
        return context.page("cases.html", page=inspector.cases(query), query=query, namespaces=inspector.namespaces(),
                            title="Cases")

    @app.get("/cases/{case_id:path}")
    def case(case_id: str, request: Request) -> Response:
        found = inspector.case(case_id)
        text = request.query_params.get("q") or found.task
        preview, preview_error = None, None
        try:
            preview = inspector.preview(text, namespace=request.query_params.get("namespace") or None)
        except MementoError as error:
            preview_error = str(error)
        scores, note = inspector.policy.usefulness([found])
        return context.page("case.html", case=found, exposure=inspector.exposure(case_id), query=text,
                            similarity=inspector.similarity(case_id, text), usefulness=(scores or {}).get(case_id),
                            usefulness_note=note, preview=preview, preview_error=preview_error,
                            saved=request.query_params.get("saved"), restored=request.query_params.get("restored"),
                            title=f"Case {case_id}")

    # -- editing --------------------------------------------------------------------------------

    @app.get("/edit/{case_id:path}")
    def edit_form(case_id: str) -> Response:
        found = inspector.case(case_id)
        return context.page("edit.html", case=found, form=edit_values(found), error=None, title=f"Edit {case_id}")

    @app.post("/edit/{case_id:path}")
    async def edit(case_id: str, request: Request) -> Response:
        values = await submitted(request, context)
        try:
            _, changed = await run_in_threadpool(inspector.edit, case_id, values)
        except MementoError as error:
            found = await run_in_threadpool(inspector.case, case_id)
            return context.page("edit.html", error_status(error), case=found, form={**edit_values(found), **values},
                                error=str(error), title=f"Edit {case_id}")
        return see_other(f"/cases/{path_part(case_id)}?saved={','.join(changed) or 'nothing'}")

    @app.post("/delete/{case_id:path}")
    async def delete(case_id: str, request: Request) -> Response:
        await submitted(request, context)
        result = await run_in_threadpool(inspector.delete, case_id)
        return see_other(f"/trash?deleted={path_part(result['trash'].rsplit('/', 1)[-1])}")

    @app.get("/trash")
    def trash(request: Request) -> Response:
        return context.page("trash.html", files=inspector.trash(), deleted=request.query_params.get("deleted"),
                            error=None, title="Trash")

    @app.post("/restore/{name}")
    async def restore(name: str, request: Request) -> Response:
        await submitted(request, context)
        try:
            count = await run_in_threadpool(inspector.restore, name)
        except MementoError as error:
            files = await run_in_threadpool(inspector.trash)
            return context.page("trash.html", error_status(error), files=files, deleted=None, error=str(error),
                                title="Trash")
        first = inspector.trash_file(name).cases[0]["id"]
        return see_other(f"/cases/{path_part(first)}?restored={count}")

    @app.get("/duplicates")
    def duplicates(request: Request) -> Response:
        threshold = parse_number(request.query_params.get("threshold"), "threshold") or DEFAULT_THRESHOLD
        namespace = request.query_params.get("namespace") or ""
        return context.page("duplicates.html", groups=inspector.duplicates(threshold, namespace), threshold=threshold,
                            namespace=namespace, namespaces=inspector.namespaces(), error=None,
                            merged=request.query_params.get("merged"), title="Near-duplicates")

    @app.post("/merge")
    async def merge(request: Request) -> Response:
        values = await submitted(request, context)
        threshold = parse_number(values.get("threshold"), "threshold") or DEFAULT_THRESHOLD
        namespace = values.get("namespace", "")
        remove = [i for i in values.get("remove", "").split("\n") if i]
        try:
            result = await run_in_threadpool(inspector.merge, values.get("keep", ""), remove, threshold, namespace)
        except MementoError as error:
            groups = await run_in_threadpool(inspector.duplicates, threshold, namespace)
            return context.page("duplicates.html", error_status(error), groups=groups, threshold=threshold,
                                namespace=namespace, namespaces=inspector.namespaces(), error=str(error), merged=None,
                                title="Near-duplicates")
        return see_other(f"/duplicates?threshold={threshold:g}&merged={result['deleted']}")

    # -- runs -----------------------------------------------------------------------------------

    @app.get("/runs")
    def run_list() -> Response:
        return context.page("runs.html", runs=[(name, runs.summary(name)) for name in runs.names()], title="Runs")

    @app.get("/runs/{name:path}/plots/{plot}")
    def plot(name: str, plot: str) -> Response:
        return FileResponse(runs.plot(name, plot), media_type="image/png", headers=SECURITY_HEADERS)

    @app.get("/runs/{name:path}/episodes/{number:int}")
    def episode(name: str, number: int) -> Response:
        return context.page("episode.html", run=name, episode=runs.episode(name, number),
                            total=len(runs.episodes(name)), title=f"Episode {number} of {name}")

    @app.get("/runs/{name:path}")
    def run(name: str, request: Request) -> Response:
        arm, phase = request.query_params.get("arm", ""), request.query_params.get("phase", "")
        page = parse_page(request.query_params.get("page"))
        everything = runs.episodes(name)
        chosen = episode_filter(everything, arm, phase)
        size = context.config.page_size
        return context.page("run.html", run=name, summary=runs.summary(name), plots=runs.plots(name),
                            episodes=chosen[(page - 1) * size: page * size], total=len(chosen), page=page,
                            has_next=page * size < len(chosen), arm=arm, phase=phase,
                            arms=sorted({e.get("arm") for e in everything if e.get("arm")}), title=f"Run {name}")

