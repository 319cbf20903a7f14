"""Device enrolment (``POST /v1/devices``) and the auditor's enrolment counts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ldpserver.services.devices import MAX_ENROL_PER_REQUEST


class EnrolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(
        default=1,
        ge=1,
        le=MAX_ENROL_PER_REQUEST,
        strict=True,
        description="devices to enrol in this request (a phone or browser enrols itself: 1)",
    )


class DeviceCredential(BaseModel):
    client_id: str = Field(description="server-chosen pseudonymous id: 32 lowercase hex digits")
    device_secret: str = Field(description="43 URL-safe base64 characters; shown once, stored only hashed")


class EnrolResponse(BaseModel):
    devices: list[DeviceCredential]


class EnrolmentCount(BaseModel):
    key_id: str
    day: str = Field(description="UTC date of enrolment, YYYY-MM-DD")
    enrolments: int


class EnrolmentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{12}$")


class EnrolmentList(BaseModel):
    items: list[EnrolmentCount]
    total: int
