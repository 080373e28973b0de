"""Background job runner: server calls in a worker thread that only talks to a queue; no bpy here.

The main thread creates a Job with a plan (a function of a Worker), starts it and calls poll() from a timer or a
modal operator (or pump() in background mode); poll() never blocks. The worker submits each endpoint call with
gradio_client's Client.submit() and turns the gradio job's status (queue rank, ETA, gr.Progress data) into
JobEvent progress events. cancel() asks the worker to stop: it calls the server's `cancel` endpoint with the
asset id the add-on chose up front (gradio's own cancel only removes queued jobs) and cancels the gradio job.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from . import client as client_module
from .client import ServerError

PROGRESS, DONE, ERROR, CANCELLED = "progress", "done", "error", "cancelled"
ASSET_ID_PATTERN = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{8}$")
# How a sleeping or starting Space answers (HF returns 503 while it boots); such errors are retried.
_WAKING = re.compile(r"sleeping|space is starting|starting up|\b503\b|service unavailable", re.IGNORECASE)
POLL_INTERVAL = 0.1  # seconds between two status checks in the worker


class JobCancelled(Exception):
    """Raised inside the worker when the user cancelled; ends the job with a cancelled event."""


@dataclass
class JobEvent:
    """One thing the worker reports; the main thread reads these through Job.poll()."""

    kind: str  # progress | done | error | cancelled
    stage: str = ""
    fraction: float | None = None  # 0..1 over the whole job
    message: str = ""
    queue_position: int | None = None
    eta_s: float | None = None
    result: Any = None


@dataclass(frozen=True)
class Connection:
    """What a worker needs to reach the server (a plain copy made on the main thread; repr hides the token)."""

    server: str
    token: str = field(default="", repr=False)
    owner_key: str = field(default="", repr=False)
    request_timeout: float = 30.0
    job_timeout: float = 1800.0
    download_dir: str = ""

    @classmethod
    def of(cls, settings: Any, download_dir: str | Path = "") -> "Connection":
        """From preferences.ConnectionSettings (or anything with the same attributes)."""
        return cls(server=settings.server, token=getattr(settings, "token", "") or "",
                   owner_key=getattr(settings, "owner_key", "") or "",
                   request_timeout=float(getattr(settings, "request_timeout", 30.0)),
                   job_timeout=float(getattr(settings, "job_timeout", 1800.0)), download_dir=str(download_dir))


def new_asset_id() -> str:
    """An id in the server's format (YYYYMMDDTHHMMSS-xxxxxxxx), chosen by the add-on so it can cancel."""
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"


def _words(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def is_waking(message: str) -> bool:
    return bool(_WAKING.search(message or ""))


class Worker:
    """The worker thread's side: server calls with progress, cancel checks and timeouts. Never touches bpy."""

    def __init__(self, job: "Job"):
        self._job = job
        self.connection = job.connection
        self.asset_id = job.asset_id
        self.client = None
        self._span = (0.0, 1.0)
        self._stage = ""
        self._best = 0.0

    # -- reporting -------------------------------------------------------------------------------------------
    def progress(self, fraction: float | None, message: str, *, queue_position=None, eta_s=None) -> None:
        if fraction is not None:
            start, end = self._span
            fraction = max(self._best, min(1.0, start + (end - start) * max(0.0, min(1.0, fraction))))
            self._best = fraction
        self._job._put(JobEvent(PROGRESS, stage=self._stage, fraction=fraction, message=message,
                                queue_position=queue_position, eta_s=eta_s))

    def stage(self, name: str, start: float, end: float) -> None:
        """The next calls report `name` and map their own 0..1 into start..end of the whole job."""
        self._stage, self._span = name, (start, end)
        self.progress(0.0, name)

    def check(self) -> None:
        if self._job._cancel.is_set():
            raise JobCancelled("cancelled by the user")
        if time.monotonic() > self._job._deadline:
            raise ServerError(f"the job took longer than its limit of {self.connection.job_timeout:.0f} s "
                              "(preferences: Job Timeout) and was stopped")

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check()
            time.sleep(min(POLL_INTERVAL, max(0.0, end - time.monotonic())))

    # -- connection ------------------------------------------------------------------------------------------
    def _with_wake_retry(self, what: Callable[[], Any]) -> Any:
        """Run `what`; while the Space sleeps or starts, retry with backoff and say so."""
        delay, attempt = 2.0, 0
        while True:
            self.check()
            try:
                return what()
            except JobCancelled:
                raise
            except Exception as exc:
                message = _words(exc)
                if not is_waking(message):
                    raise
                attempt += 1
                self.progress(None, f"waking up the Space (attempt {attempt}, next try in {delay:.0f} s): {message}")
                self.sleep(delay)
                delay = min(delay * 2, 30.0)

    def connect(self):
        if self.client is not None:
            return self.client
        conn = self.connection

        def make():
            try:
                return client_module.connect(conn.server, token=conn.token, owner_key=conn.owner_key,
                                             download_dir=conn.download_dir, timeout=conn.request_timeout)
            except Exception as exc:
                message = _words(exc)
                if is_waking(message):
                    raise
                raise ServerError(f"cannot reach {conn.server}: {message}") from exc

        self.progress(None, f"connecting to {conn.server}")
        self.client = self._with_wake_retry(make)
        return self.client

    def quick(self, endpoint: str, **values) -> Any:
        """A short call (health, asset, cancel) bounded by the request timeout."""
        gjob = self.connect().submit(*client_module.arguments(endpoint, values), api_name=f"/{endpoint}")
        try:
            return gjob.result(timeout=self.connection.request_timeout)
        except Exception as exc:
            raise ServerError(_words(exc)) from exc

    # -- the main call ---------------------------------------------------------------------------------------
    def call(self, endpoint: str, **values) -> Any:
        """Submit one endpoint call and follow it to the end, reporting queue position, ETA and progress."""
        return self._with_wake_retry(lambda: self._call_once(endpoint, values))

    def _call_once(self, endpoint: str, values: dict) -> Any:
        from gradio_client.utils import Status

        gjob = self.connect().submit(*client_module.arguments(endpoint, values), api_name=f"/{endpoint}")
        self._job._gradio_job = gjob
        last = None
        try:
            while not gjob.done():
                if self._job._cancel.is_set():
                    self._cancel_server(gjob)
                    raise JobCancelled("cancelled by the user")
                if time.monotonic() > self._job._deadline:
                    self._cancel_server(gjob)
                    self.check()  # raises the timeout error
                status = gjob.status()
                key = (status.code, status.rank, status.eta,
                       tuple((p.progress, p.desc, p.index, p.length) for p in (status.progress_data or ())))
                if key != last:
                    last = key
                    self._report(status, Status)
                time.sleep(POLL_INTERVAL)
            try:
                return gjob.result(timeout=self.connection.request_timeout)
            except Exception as exc:
                if self._job._cancel.is_set():
                    raise JobCancelled("cancelled by the user") from exc
                raise ServerError(_words(exc)) from exc
        finally:
            self._job._gradio_job = None

    def _report(self, status, Status) -> None:
        code = status.code
        eta = float(status.eta) if status.eta is not None else None
        if code in (Status.JOINING_QUEUE, Status.STARTING):
            self.progress(None, "joining the queue", eta_s=eta)
        elif code == Status.IN_QUEUE:
            rank = None if status.rank is None else int(status.rank) + 1
            self.progress(None, f"waiting in the queue (position {rank})" if rank else "waiting in the queue",
                          queue_position=rank, eta_s=eta)
        elif code == Status.QUEUE_FULL:
            self.progress(None, "the server's queue is full; waiting", eta_s=eta)
        elif code in (Status.PROCESSING, Status.SENDING_DATA):
            self.progress(None, "processing", eta_s=eta)
        elif code in (Status.PROGRESS, Status.ITERATING):
            units = status.progress_data or []
            unit = units[-1] if units else None
            fraction = None
            if unit is not None:
                if unit.progress is not None:
                    fraction = float(unit.progress)
                elif unit.index is not None and unit.length:
                    fraction = float(unit.index) / float(unit.length)
            self.progress(fraction, (unit.desc if unit is not None and unit.desc else "working"), eta_s=eta)

    def _cancel_server(self, gjob) -> None:
        """Stop the job on the server (cancel endpoint by asset id), then drop the gradio job."""
        deadline = time.monotonic() + min(10.0, self.connection.request_timeout)
        while self.asset_id and time.monotonic() < deadline and not gjob.done():
            try:
                answer = json.loads(self.quick("cancel", asset_id=self.asset_id))
            except Exception:
                answer = None  # the asset may not exist yet: the server creates it after reading the input
            if answer and (answer.get("cancel_requested") or answer.get("status") in ("cancelled", "error")):
                break
            status = gjob.status()
            if getattr(status.code, "value", "") in ("JOINING_QUEUE", "IN_QUEUE", "STARTING"):
                break  # never started on the server: gradio's cancel removes it from the queue
            time.sleep(0.2)
        try:
            gjob.cancel()
        except Exception:
            pass
        # Wait (bounded) until the server has really stopped working on the asset: it stops at its next check,
        # which a long step (a big marching-cubes grid, a bake pass) may only reach after some seconds.
        self.progress(None, "cancelling: waiting for the server to stop")
        deadline = time.monotonic() + max(60.0, self.connection.request_timeout)
        while self.asset_id and time.monotonic() < deadline:
            try:
                record = json.loads(self.quick("asset", asset_id=self.asset_id))
            except Exception:
                break
            if record.get("status") != "running":
                break
            time.sleep(0.2)

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass


class Job:
    """One piece of network work: `plan(worker)` runs in a thread; events come back through poll()."""

    def __init__(self, plan: Callable[[Worker], Any], connection: Connection, *, asset_id: str = "",
                 title: str = "job"):
        if asset_id and not ASSET_ID_PATTERN.fullmatch(asset_id):
            raise ValueError(f"asset_id={asset_id!r}: expected an id like 20261122T004512-1a2b3c4d")
        self.plan = plan
        self.connection = connection
        self.asset_id = asset_id
        self.title = title
        self._events: queue.Queue[JobEvent] = queue.Queue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._gradio_job = None
        self._deadline = float("inf")
        self.final: JobEvent | None = None  # the done/error/cancelled event, once poll() has seen it
        self.last_progress: JobEvent | None = None

    # -- main thread -----------------------------------------------------------------------------------------
    def start(self) -> "Job":
        self._deadline = time.monotonic() + self.connection.job_timeout
        self._thread = threading.Thread(target=self._run, name=f"open3dforge-{self.title}", daemon=True)
        self._thread.start()
        return self

    def poll(self) -> list[JobEvent]:
        """Every event since the last poll; never waits."""
        events = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            events.append(event)
            if event.kind == PROGRESS:
                self.last_progress = event
            else:
                self.final = event
        return events

    def cancel(self) -> None:
        """Ask the worker to stop the job here and on the server; returns at once."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self.final is not None

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- worker thread ---------------------------------------------------------------------------------------
    def _put(self, event: JobEvent) -> None:
        self._events.put(event)

    def _run(self) -> None:
        worker = Worker(self)
        try:
            result = self.plan(worker)
            if self._cancel.is_set():
                raise JobCancelled("cancelled by the user")
            self._put(JobEvent(DONE, stage="done", fraction=1.0, message="done", result=result))
        except JobCancelled as exc:
            self._put(JobEvent(CANCELLED, stage="cancelled", message=f"{exc}", result=self.asset_id))
        except ServerError as exc:
            self._put(JobEvent(ERROR, stage="error", message=_words(exc)))
        except Exception as exc:  # anything unexpected still ends the job with a message
            self._put(JobEvent(ERROR, stage="error", message=f"{type(exc).__name__}: {_words(exc)}"))
        finally:
            worker.close()


def pump(job: Job, timeout: float | None = None, interval: float = 0.05,
         on_event: Callable[[JobEvent], None] | None = None) -> JobEvent:
    """Poll `job` on the calling thread until it ends (background mode); returns the final event.

    When `timeout` passes, the job is cancelled (here and on the server) and pumped until it ends.
    """
    if job._thread is None:
        job.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for event in job.poll():
            if on_event is not None:
                on_event(event)
        if job.final is not None:
            return job.final
        if deadline is not None and time.monotonic() > deadline and not job.cancel_requested:
            job.cancel()
        time.sleep(interval)


# -- plans: what the add-on asks of the server ---------------------------------------------------------------
# The stage order lives in the server's forge alone: the add-on asks forge for whole chains (from images, a
# prompt, or an asset it uploaded or made before) and follows its progress.

GLB_PACKAGE = {"use_fbx": False}  # the add-on writes FBX with the user's Blender, so it asks for GLB meshes


def _forge(worker: Worker, values: dict, options: dict, engine: str) -> dict:
    options = {**options, "engine": engine, "export": {**GLB_PACKAGE, **(options.get("export") or {})}}
    record, package = worker.call("forge", options=options, **values)
    return {"asset_id": worker.asset_id, "record": json.loads(record), "package": str(package)}


def forge_plan(images: Sequence[str | Path], *, name: str = "", views: Sequence[str] = (), preset: str = "",
               generator: str = "auto", seed: int = 0, options: dict | None = None, engine: str = "ue5",
               prompt: str = ""):
    """Images (or, with none, a prompt) -> the server's forge. Result: asset_id, record, package.

    `options` has the server's forge sections ({"generate": {...}, "postprocess": {...}, "bake": {...},
    "export": {...}, "kind": ...}); the asset gets the job's id, so the add-on can cancel it by id.
    """
    options = {"generator": generator, "seed": int(seed), **(options or {})}
    paths = [str(p) for p in images]

    def plan(worker: Worker) -> dict:
        chain = {**options, "asset_id": worker.asset_id}
        if prompt and not paths:
            chain["prompt"] = prompt
        worker.stage("forging", 0.0, 1.0)
        return _forge(worker, {"images": paths or None, "name": name, "views": views, "preset": preset}, chain,
                      engine)

    return plan


def mesh_plan(mesh: str | Path, *, name: str = "", options: dict | None = None, engine: str = "ue5",
              kind: str = "prop"):
    """A mesh file (the selected object as GLB) -> import_mesh -> the server's forge finishes it.

    The object already has its real size in the user's scene, so post-processing keeps it unless the
    options name a height.
    """
    options = dict(options or {})
    postprocess = dict(options.get("postprocess") or {})
    if "height" not in postprocess and "height_cm" not in postprocess:
        postprocess["height"] = "keep"
    options["postprocess"] = postprocess

    def plan(worker: Worker) -> dict:
        import_options = {"asset_id": worker.asset_id, "kind": options.get("kind", kind),
                          **(options.get("import_mesh") or {})}
        worker.stage("uploading the mesh", 0.0, 0.15)
        worker.call("import_mesh", mesh=str(mesh), name=name, options=import_options)
        worker.check()
        worker.stage("forging", 0.15, 1.0)
        chain = {key: value for key, value in options.items() if key not in ("import_mesh", "kind")}
        return _forge(worker, {}, {**chain, "asset_id": worker.asset_id}, engine)

    return plan


def generate_plan(images: Sequence[str | Path], *, name: str = "", views: Sequence[str] = (), preset: str = "",
                  generator: str = "auto", seed: int = 0, options: dict | None = None, prompt: str = ""):
    """Images (or, with none, a prompt) -> generate (or generate_text) only. Result: asset_id, record, high_poly."""
    options = dict(options or {})

    def plan(worker: Worker) -> dict:
        generate_options = {**(options.get("generate") or {}), "asset_id": worker.asset_id}
        if options.get("kind"):
            generate_options["kind"] = options["kind"]
        worker.stage("generating", 0.0, 1.0)
        if prompt and not images:
            text = {**generate_options, "generator": generator, "preset": preset, "seed": int(seed),
                    "text": options.get("text") or {}}
            record, glb = worker.call("generate_text", prompt=prompt, name=name, options=text)
        else:
            record, glb = worker.call("generate", images=[str(p) for p in images], name=name, generator=generator,
                                      views=views, preset=preset, seed=int(seed), options=generate_options)
        return {"asset_id": worker.asset_id, "record": json.loads(record), "high_poly": str(glb)}

    return plan


def scene_plan(image: str | Path, *, name: str = "", generator: str = "auto", seed: int = 0,
               options: dict | None = None, engine: str = "ue5"):
    """One picture of a scene -> the server's scene endpoint (GLB packages, for the add-on to import).
    Result: asset_id, record, package (the scene zip)."""
    options = {key: value for key, value in (options or {}).items() if key != "kind"}
    options.update(engine=engine, generator=options.get("generator", generator), seed=int(options.get("seed", seed)),
                   export={**GLB_PACKAGE, **(options.get("export") or {})})

    def plan(worker: Worker) -> dict:
        worker.stage("making the scene", 0.0, 1.0)
        record, package = worker.call("scene", image=str(image), name=name,
                                      options={**options, "asset_id": worker.asset_id})
        return {"asset_id": worker.asset_id, "record": json.loads(record), "package": str(package)}

    return plan


def finish_plan(options: dict | None = None, engine: str = "ue5"):
    """An existing asset (Job.asset_id) -> the server's forge, from postprocess on."""
    options = dict(options or {})

    def plan(worker: Worker) -> dict:
        worker.stage("forging", 0.0, 1.0)
        return _forge(worker, {}, {**options, "asset_id": worker.asset_id}, engine)

    return plan


def export_plan(engine: str = "ue5", options: dict | None = None):
    """An existing asset -> its engine package (GLB meshes for the add-on to convert)."""
    export_options = {**GLB_PACKAGE, **(options or {})}

    def plan(worker: Worker) -> dict:
        worker.stage("exporting", 0.0, 1.0)
        record, package = worker.call("export", asset_id=worker.asset_id, engine=engine, options=export_options)
        return {"asset_id": worker.asset_id, "record": json.loads(record), "package": str(package)}

    return plan


def health_plan():
    """health + quota + recent assets, for the Connection and History panels."""

    def plan(worker: Worker) -> dict:
        worker.stage("connecting", 0.0, 1.0)
        health = json.loads(worker.quick("health"))
        try:
            quota = json.loads(worker.quick("quota"))
        except ServerError as exc:
            quota = {"error": str(exc)}
        try:
            assets = json.loads(worker.quick("assets"))
        except ServerError:
            assets = []
        return {"health": health, "quota": quota, "assets": assets}

    return plan
