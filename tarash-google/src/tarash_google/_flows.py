"""The lifecycle flows of both providers: where each route is sent, and what its answer means.

``mode`` is ``"gemini"`` (provider ``google``: API key added by core as ``x-goog-api-key``) or
``"vertex"`` (provider ``google-vertex``: an OAuth token this flow obtains from the credentials
file, sent with ``auth=False``). Routes, with their sources, are in ``docs/providers/google.md``.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import attrs

from tarash.tarash_gateway.exceptions import HTTPError, Phase, ValidationError
from tarash.tarash_gateway.plugin import CallContext, Flow, JobRef, JobStatus, Request, Response, SubmittedJob

from . import _auth, _bodies, _errors, _results
from ._models import GoogleModel, Mode, lookup
from ._names import CREDENTIALS_ENV, GEMINI_API_VERSION, VERTEX_API_VERSION

DEFAULT_LOCATION = "global"
_MULTI_REGIONAL = ("us", "eu")


@attrs.frozen(kw_only=True)
class Site:
    """Where a mode's requests go: ``root`` ("" = the API root core joins), version, parent."""

    mode: Mode
    root: str
    version: str
    parent: str = ""
    credentials: _auth.Credentials | None = None

    def url(self, path: str) -> str:
        """``root/version/path`` for a path below the version (``models/...``, ``projects/...``)."""
        return f"{self.root}/{self.version}/{path}"

    def scoped(self, path: str) -> str:
        """A path below the project and location on Vertex, below the version otherwise."""
        return self.url(f"{self.parent}/{path}" if self.parent else path)

    def model(self, model_id: str) -> str:
        return self.scoped(
            f"publishers/google/models/{model_id}" if self.mode == "vertex" else f"models/{model_id}"
        )


def _vertex_root(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in _MULTI_REGIONAL:
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def site(mode: Mode, config: Any) -> Site:
    """The mode's site from the config (reads the Vertex credentials file; sends nothing)."""
    provider_config: Mapping[str, Any] = config.provider_config or {}
    if mode == "gemini":
        return Site(mode=mode, root="", version=config.api_version or GEMINI_API_VERSION)
    path = provider_config.get("credentials_file") or os.environ.get(CREDENTIALS_ENV)
    if not path:
        raise ValidationError(
            f"google-vertex needs credentials: set provider_config['credentials_file'] or {CREDENTIALS_ENV} "
            "to a service-account (or gcloud application-default) JSON file",
            field=_auth.FIELD,
        )
    credentials = _auth.load(str(path))
    project = provider_config.get("project") or credentials.project
    if not project:
        raise ValidationError(
            "google-vertex needs provider_config['project'] (the credentials file names none)",
            field="provider_config.project",
        )
    location = str(provider_config.get("location") or DEFAULT_LOCATION)
    return Site(
        mode=mode,
        root="" if config.base_url else _vertex_root(location),
        version=config.api_version or VERTEX_API_VERSION,
        parent=f"projects/{project}/locations/{location}",
        credentials=credentials,
    )


def call(site: Site, method: str, url: str, json: Any = None, phase: Phase = "poll") -> Flow[Response]:
    """One request to Google, authenticated for the mode, Google's error bodies translated."""
    if site.credentials is None:
        request = Request(method=method, url=url, json=json)
    else:
        token = yield from _auth.access_token(site.credentials)
        headers = {"Authorization": f"Bearer {token}"}
        if site.credentials.quota_project:
            headers["x-goog-user-project"] = site.credentials.quota_project
        request = Request(method=method, url=url, json=json, headers=headers, auth=False)
    try:
        return (yield request)
    except HTTPError as exc:
        if exc.status_code == 401 and site.credentials is not None:
            _auth.clear_tokens()
        _errors.translate(exc, phase)


def _inputs(request: Any) -> Flow[list[tuple[str, _bodies.Media]]]:
    """The request's input images as Media, fetching http(s) ones (public URLs, no key)."""
    images = []
    for image in getattr(request, "image_list", None) or ():
        media = _bodies.media_from(image.image)
        if isinstance(media, str):
            answer = yield Request(method="GET", url=media, auth=False)
            mime = (answer.header("content-type") or "image/png").split(";")[0].strip()
            media = _bodies.Media(mime_type=mime, data=answer.content)
        images.append((image.type, media))
    return images


# -- image jobs: one synchronous call, its output held for result ------------------------------

_HELD_LIMIT = 64
_held_lock = threading.Lock()
_held: OrderedDict[str, Any] = OrderedDict()


def _hold(job_id: str, response: Any) -> None:
    with _held_lock:
        _held[job_id] = response
        while len(_held) > _HELD_LIMIT:
            _held.popitem(last=False)


def _image_submit(site: Site, model: GoogleModel, config: Any, request: Any) -> Flow[SubmittedJob]:
    images = yield from _inputs(request)
    if model.route == "imagen":
        body = _bodies.imagen_body(request, config.provider_config or {})
        answer = yield from call(site, "POST", f"{site.model(model.id)}:predict", body, phase="submit")
        job_id = f"imagen-{uuid.uuid4().hex}"
        images_out = _results.imagen_images(answer.json(), job_id)
    else:
        body = _bodies.gemini_image_body(request, images)
        answer = yield from call(
            site, "POST", f"{site.model(model.id)}:generateContent", body, phase="submit"
        )
        payload = answer.json()
        job_id = str(payload.get("responseId") or f"gemini-image-{uuid.uuid4().hex}")
        images_out = _results.gemini_images(payload, job_id)
    urls = [image for image in images_out if image.startswith("gs://")]
    if len(urls) == len(images_out):
        return SubmittedJob(job_id=job_id, data={"route": model.route, "model": model.id, "images": urls})
    _hold(job_id, images_out)
    return SubmittedJob(job_id=job_id, data={"route": model.route, "model": model.id})


# -- hooks ------------------------------------------------------------------------------------


def submit(mode: Mode, config: Any, request: Any, context: CallContext) -> Flow[SubmittedJob]:
    model = lookup(config.model, context.modality, mode)
    provider_config = config.provider_config or {}
    _bodies.check(model, request, mode, provider_config)
    where = site(mode, config)
    if model.modality == "image":
        return (yield from _image_submit(where, model, config, request))
    images = yield from _inputs(request)
    data: dict[str, Any] = {"route": model.route, "model": model.id}
    if model.route == "veo":
        body = _bodies.veo_body(request, images, mode, provider_config)
        answer = yield from call(where, "POST", f"{where.model(model.id)}:predictLongRunning", body, "submit")
        return SubmittedJob(job_id=_results.required(answer, "name", "submit"), data=data)
    body = _bodies.omni_body(model, request, images, provider_config)
    answer = yield from call(where, "POST", where.scoped("interactions"), body, "submit")
    if where.parent:
        data["parent"] = where.parent
    return SubmittedJob(job_id=_results.required(answer, "id", "submit"), data=data)


def _route(job: JobRef) -> str:
    """The job's route from its data, else from the shape of its id (resume from a bare name)."""
    route = job.data.get("route")
    if route:
        return str(route)
    return "veo" if "/operations/" in job.job_id else "omni"


def _fetch(where: Site, job: JobRef, phase: Phase) -> Flow[Mapping[str, Any]]:
    """The job's current state: the Veo operation or the interaction."""
    if _route(job) == "veo":
        if where.mode == "vertex":
            resource = job.job_id.rpartition("/operations/")[0]
            body = {"operationName": job.job_id}
            answer = yield from call(
                where, "POST", where.url(f"{resource}:fetchPredictOperation"), body, phase
            )
        else:
            answer = yield from call(where, "GET", where.url(job.job_id), phase=phase)
    else:
        answer = yield from call(where, "GET", _interaction_url(where, job), phase=phase)
    return _results.body(answer, phase)


def _interaction_url(where: Site, job: JobRef) -> str:
    parent = str(job.data.get("parent") or where.parent)
    return where.url(f"{parent}/interactions/{job.job_id}" if parent else f"interactions/{job.job_id}")


def status(mode: Mode, config: Any, job: JobRef, context: CallContext) -> Flow[JobStatus]:
    if job.modality == "image":
        yield from ()
        return JobStatus(state="completed")
    where = site(mode, config)
    state = yield from _fetch(where, job, "poll")
    if _route(job) == "veo":
        return _results.operation_status(state, job)
    return _results.interaction_status(state, job)


def result(mode: Mode, config: Any, job: JobRef, context: CallContext) -> Flow[Any]:
    if job.modality == "image":
        yield from ()
        return _results.held_images(job, _held_lock, _held)
    where = site(mode, config)
    state = yield from _fetch(where, job, "result")
    if _route(job) == "veo":
        video = _results.operation_video(state, job)
    else:
        video = _results.interaction_video(state, job)
    if (
        mode == "gemini"
        and isinstance(video.source, str)
        and video.source.startswith(("http://", "https://"))
    ):
        answer = yield from call(where, "GET", video.source, phase="result")
        while answer.status_code in (301, 302, 303, 307, 308) and answer.header("location"):
            answer = yield Request(method="GET", url=str(answer.header("location")), auth=False)
        video = attrs.evolve(
            video, source=answer.content, mime_type=answer.header("content-type") or video.mime_type
        )
    return _results.video_response(video, state, job)


def cancel(mode: Mode, config: Any, job: JobRef, context: CallContext) -> Flow[bool]:
    """Vertex only: ``{operation}:cancel`` for Veo, ``interactions/{id}/cancel`` for Omni."""
    if job.modality == "image":
        yield from ()
        return False
    where = site(mode, config)
    if _route(job) == "veo":
        url = where.url(f"{job.job_id}:cancel")
    else:
        url = f"{_interaction_url(where, job)}/cancel"
    try:
        answer = yield from call(where, "POST", url, {}, phase="cancel")
    except HTTPError as exc:
        if exc.status_code in (400, 409) and _errors.status_of(exc.raw_response).get("status") in (
            "FAILED_PRECONDITION",
            "ABORTED",
        ):
            return False
        raise
    if _route(job) == "omni":
        return bool(_results.body(answer, "cancel").get("status") == "cancelled")
    return True
