"""/v1/devices: device enrolment (client role); see ``services/devices.py``."""

from __future__ import annotations

from flask import current_app, request
from flask_openapi3 import APIBlueprint, Tag

from ldpserver.api.common import json_response, now, operation, state
from ldpserver.auth import current_principal
from ldpserver.schemas.devices import EnrolRequest, EnrolResponse
from ldpserver.services.devices import enrol, redis_windows_from_env

TAG = Tag(name="devices", description="device enrolment: a server-chosen client_id and a device secret")
_REDIS = "ldp_enrol_redis"


def source_address() -> str:
    """The caller's address: the socket peer, or — behind ``LDP_FORWARDED_HOPS`` trusted
    proxies — the address that many hops from the right of ``X-Forwarded-For``."""
    hops = state().settings.forwarded_hops
    if hops > 0:
        chain = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        if len(chain) >= hops:
            return chain[-hops]
    return request.remote_addr or "unknown"


def build_blueprint() -> APIBlueprint:
    bp = APIBlueprint("devices", __name__, url_prefix="/v1/devices", abp_tags=[TAG])
    extras, errors = operation("POST", "/v1/devices", 400, 413, 415, 429, 503)

    @bp.post("", responses={201: EnrolResponse, **errors}, summary="Enrol a device (client)", **extras)
    def enrol_device(body: EnrolRequest):
        """Returns a random ``client_id`` and a device secret (shown once). Every upload must
        carry the secret of each device it reports for; a device belongs to the client key
        that enrolled it. Limited per key (cap and rate) and per source address (rate)."""
        st = state()
        redis = current_app.extensions.get(_REDIS, False)
        if redis is False:
            redis = current_app.extensions.setdefault(_REDIS, redis_windows_from_env())
        made = enrol(st.engine, current_principal(), body.count, source_address(), now(), st.settings, redis)
        payload = {"devices": [{"client_id": d.client_id, "device_secret": d.device_secret} for d in made]}
        return json_response(payload, 201, {"Cache-Control": "no-store"})

    return bp
